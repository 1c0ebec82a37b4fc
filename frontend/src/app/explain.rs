//! "Explain": which words drove a prediction (`model::explain`, run in the worker), shown as
//! the text with each word highlighted by its weight toward a chosen label, a legend that does
//! not rely on colour alone (solid underline toward, dashed away, and the signed figures), and
//! the words that mattered most.

use super::i18n::{tr, use_i18n, I18n};
use super::model::{describe, ExplainRun, ExplainTarget, Model, Status};
use crate::i18n::Msg;
use leptos::prelude::*;
use model::explain::Explanation;

/// Words listed under "mattered most".
const TOP_WORDS: usize = 5;

/// A weight with its sign, e.g. `+0.412` / `−0.031`.
fn signed(i: I18n, w: f32) -> String {
    let sign = if w < 0.0 { "−" } else { "+" };
    format!("{sign}{}", i.num(w.abs() as f64, 3))
}

/// The "Explain" button for `text`, with progress and cancel while it runs.
#[component]
pub fn ExplainButton(target: ExplainTarget, text: String) -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
    let text = StoredValue::new(text);
    let mine = move || model.explain.with(|e| e.target() == Some(target));
    let running = move || model.explain.with(|e| matches!(e, ExplainRun::Running { .. })) && mine();
    let progress = move || match model.explain.get() {
        ExplainRun::Running { done, total, .. } if total > 0 => {
            i.f(Msg::ExplainingProgress, &[("done", &done.to_string()), ("total", &total.to_string())])
        }
        _ => i.t(Msg::Explaining).to_string(),
    };
    let testid = match target {
        ExplainTarget::Post => "explain-run",
        ExplainTarget::Row(_) => "row-explain",
    };
    view! {
        <div class="explain-actions">
            <Show
                when=running
                fallback=move || view! {
                    <button type="button" data-testid=testid
                        disabled=move || model.status.with(|s| *s != Status::Ready)
                        on:click=move |_| model.explain(target, text.get_value())
                        title=tr(Msg::ExplainHint)
                    >{tr(Msg::Explain)}</button>
                }
            >
                <span class="hint" data-testid="explain-progress" aria-live="polite">{progress}</span>
                <button type="button" class="link" on:click=move |_| model.cancel_explain()>{tr(Msg::Cancel)}</button>
            </Show>
        </div>
    }
}

/// The explanation of `text`, once the worker has it.
#[component]
pub fn ExplanationView(target: ExplainTarget, text: String) -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
    move || match model.explain.get() {
        ExplainRun::Done { id, target: t, text: x, explanation, elapsed_ms, workers } if t == target && x == text => {
            view! { <ExplanationFigure id text=x explanation elapsed_ms workers /> }.into_any()
        }
        ExplainRun::Failed { target: t, problem } if t == target => {
            view! { <p class="error" role="alert">{move || describe(i, &problem)}</p> }.into_any()
        }
        _ => ().into_any(),
    }
}

/// `id`: the request's (tests and benchmarks wait for a new one); `workers` that shared it.
#[component]
fn ExplanationFigure(
    id: u64,
    text: String,
    explanation: Explanation,
    elapsed_ms: f64,
    workers: usize,
) -> impl IntoView {
    let i = use_i18n();
    let predicted = explanation.labels.iter().position(|l| *l == explanation.label).unwrap_or(0);
    let chosen = RwSignal::new(predicted);
    let ex = StoredValue::new(explanation);
    let label_name = move || ex.with_value(|e| i.label(&e.labels[chosen.get()]));
    let rows = ex.with_value(|e| e.words.len() + 1);

    // The text with every word marked; the whitespace between words as it was.
    let marked = move || {
        let c = chosen.get();
        ex.with_value(|e| {
            let strongest = e.words.iter().map(|w| w.weights[c].abs()).fold(0.0f32, f32::max).max(1e-6);
            let mut parts = Vec::with_capacity(2 * e.words.len() + 1);
            let mut at = 0;
            for (n, w) in e.words.iter().enumerate() {
                parts.push(text[at..w.start].to_string().into_any());
                at = w.end;
                let weight = w.weights[c];
                let class = match (w.beyond_limit, weight >= 0.0) {
                    (true, _) => "w beyond",
                    (false, true) => "w toward",
                    (false, false) => "w away",
                };
                let strength = format!("{:.3}", weight.abs() / strongest);
                let title = if w.beyond_limit {
                    i.t(Msg::ExplainBeyondLimit).to_string()
                } else {
                    i.f(Msg::ExplainWordTitle, &[("weight", &signed(i, weight)), ("label", &label_name())])
                };
                let all: Vec<String> = w.weights.iter().map(|x| x.to_string()).collect();
                parts.push(
                    view! {
                        <mark class=class style=format!("--strength:{strength}") title=title data-testid="explain-word"
                            data-index=n.to_string() data-word=w.word.clone() data-weights=all.join(",")>
                            {w.word.clone()}
                        </mark>
                    }
                    .into_any(),
                );
            }
            parts.push(text[at..].to_string().into_any());
            parts
        })
    };
    let top = move || {
        let c = chosen.get();
        ex.with_value(|e| {
            let mut order: Vec<usize> = (0..e.words.len()).filter(|&n| !e.words[n].beyond_limit).collect();
            order.sort_by(|&a, &b| e.words[b].weights[c].abs().total_cmp(&e.words[a].weights[c].abs()));
            order
                .into_iter()
                .take(TOP_WORDS)
                .map(|n| {
                    let w = &e.words[n];
                    let (arrow, key) =
                        if w.weights[c] >= 0.0 { ("▲", Msg::ExplainToward) } else { ("▼", Msg::ExplainAway) };
                    let label = label_name();
                    view! {
                        <li data-testid="explain-top">
                            <span aria-hidden="true">{arrow}" "</span>
                            <q translate="no">{w.word.clone()}</q>" "
                            <span class="num">{signed(i, w.weights[c])}</span>" "
                            <span class="hint">{i.f(key, &[("label", &label)])}</span>
                        </li>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <figure class="explanation" data-testid="explanation" data-request=id.to_string()
            data-elapsed-ms=format!("{elapsed_ms:.1}") data-workers=workers.to_string()>
            <figcaption>
                <label>{tr(Msg::ExplainWhichLabel)}" "
                    <select data-testid="explain-label" on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).parse() { chosen.set(n) }
                    }>
                        {ex.with_value(|e| e.labels.clone()).into_iter().enumerate().map(|(n, l)| view! {
                            <option value=n.to_string() selected=move || chosen.get() == n>{move || i.label(&l)}</option>
                        }).collect_view()}
                    </select>
                </label>
            </figcaption>
            <p class="explained-text" translate="no">{marked}</p>
            <p class="explain-legend">
                <span class="w toward" style="--strength:1">{tr(Msg::ExplainLegendWord)}</span>" "
                {move || i.f(Msg::ExplainLegendToward, &[("label", &label_name())])}" · "
                <span class="w away" style="--strength:1">{tr(Msg::ExplainLegendWord)}</span>" "
                {move || i.f(Msg::ExplainLegendAway, &[("label", &label_name())])}" · "
                {tr(Msg::ExplainLegendStrength)}
            </p>
            <p class="top-title">{tr(Msg::ExplainTopWords)}</p>
            <ol class="top-words">{top}</ol>
            <p class="hint" data-testid="explain-method">{move || i.f(Msg::ExplainMethod, &[
                ("label", &label_name()),
                ("rows", &rows.to_string()),
                ("ms", &i.num(elapsed_ms, 0)),
            ])}</p>
        </figure>
    }
}
