//! One text: the input (analysed as you type, and by the button), the label, every label's
//! score as a bar, the inference time, the explanation on request, and the feedback box.

use super::explain::{ExplainButton, ExplanationView};
use super::feedback::FeedbackBox;
use super::i18n::{tr, use_i18n};
use super::model::{describe, Analysis, ExplainTarget, Model, Status};
use crate::i18n::Msg;
use crate::protocol::Prediction;
use leptos::prelude::*;
use std::time::Duration;

/// Quiet time after the last keystroke before the text is analysed by itself.
const TYPING_PAUSE: Duration = Duration::from_millis(400);

#[component]
pub fn AnalyzePanel() -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
    let text = RwSignal::new(String::new());
    let ready = move || model.status.with(|s| *s == Status::Ready);
    let running = move || model.analysis.with(|a| matches!(a, Analysis::Running { .. }));
    let run = move || {
        let t = text.get_untracked();
        if t.trim().is_empty() || !ready() {
            return;
        }
        model.analyze(t);
    };
    // Typing schedules an analysis; each keystroke supersedes the one before. A text already
    // analysed (or being analysed, e.g. after the button) is not sent again.
    let typed = StoredValue::new(0u64);
    let on_input = move |ev| {
        text.set(event_target_value(&ev));
        let generation = typed.get_value() + 1;
        typed.set_value(generation);
        set_timeout(
            move || {
                let t = text.get_untracked();
                let same = model.analysis.with_untracked(|a| a.text() == Some(t.as_str()));
                if typed.get_value() == generation && !same {
                    run();
                }
            },
            TYPING_PAUSE,
        );
    };

    view! {
        <section class="panel" aria-labelledby="analyze-title">
            <h2 id="analyze-title">{tr(Msg::AnalyseTitle)}</h2>
            <label for="analyze-input" class="sr-only">{tr(Msg::AnalyseInputLabel)}</label>
            <textarea
                id="analyze-input"
                data-testid="analyze-input"
                rows="4"
                placeholder=tr(Msg::AnalysePlaceholder)
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                        ev.prevent_default();
                        typed.update_value(|g| *g += 1);
                        run();
                    }
                }
            ></textarea>
            <div class="actions">
                <button type="button" class="primary" data-testid="analyze-run"
                    disabled=move || !ready() || running() || text.with(|t| t.trim().is_empty())
                    on:click=move |_| {
                        typed.update_value(|g| *g += 1);
                        run()
                    }
                >{move || i.t(if running() { Msg::Analysing } else { Msg::Analyse })}</button>
                <span class="hint">{move || i.t(if ready() { Msg::RunsOnDevice } else { Msg::WaitingForModel })}</span>
            </div>
            <div aria-live="polite">{move || result_view(model)}</div>
        </section>
    }
}

fn result_view(model: Model) -> AnyView {
    let i = use_i18n();
    match model.analysis.get() {
        Analysis::Idle | Analysis::Running { .. } => ().into_any(),
        Analysis::Failed(problem) => {
            view! { <p class="error" role="alert">{move || describe(i, &problem)}</p> }.into_any()
        }
        Analysis::Done { id, text, prediction, elapsed_ms } => {
            let Some(info) = model.info.get_untracked() else { return ().into_any() };
            let labels = info.manifest.labels.clone();
            let version = info.manifest.version.clone();
            let label = prediction.label.clone();
            view! {
                <div class="result" data-request=id.to_string()>
                    <p class="verdict">
                        <span class=format!("label label-{label}") data-testid="result-label" data-label=label.clone()>
                            {let l = label.clone(); move || i.label(&l)}
                        </span>
                        <span class="elapsed" data-testid="result-time">{move || format!("{} ms", i.num(elapsed_ms, 1))}</span>
                    </p>
                    <ScoreBars labels=labels.clone() prediction=prediction.clone() />
                    <ExplainButton target=ExplainTarget::Post text=text.clone() />
                    <ExplanationView target=ExplainTarget::Post text=text.clone() />
                    // Built per result, so a new analysis starts with a fresh feedback box.
                    <FeedbackBox text prediction labels model_version=version />
                </div>
            }
            .into_any()
        }
    }
}

/// One bar per label; the number is the score itself (the end-to-end test reads `data-score`).
#[component]
pub fn ScoreBars(labels: Vec<String>, prediction: Prediction) -> impl IntoView {
    let i = use_i18n();
    view! {
        <ul class="scores">
            {labels.into_iter().zip(prediction.scores).map(|(l, s)| {
                let name = l.clone();
                let aria = l.clone();
                view! {
                    <li>
                        <span class="score-name">{move || i.label(&name)}</span>
                        <span class="bar" role="meter" aria-valuemin="0" aria-valuemax="1" aria-valuenow=s.to_string()
                            aria-label=move || i.f(Msg::ScoreOf, &[("label", &i.label(&aria))])>
                            <span class=format!("fill label-{l}") style:width=format!("{:.2}%", s * 100.0)></span>
                        </span>
                        <span class="score-value" data-testid=format!("score-{l}") data-score=s.to_string()>{move || i.num(s, 6)}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}
