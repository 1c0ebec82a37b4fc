//! One text: the input, the label, every label's score as a bar, the inference time, and the
//! feedback box.

use super::feedback::FeedbackBox;
use super::model::{Analysis, Model, Status};
use crate::protocol::Prediction;
use leptos::prelude::*;

#[component]
pub fn AnalyzePanel() -> impl IntoView {
    let model = expect_context::<Model>();
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

    view! {
        <section class="panel" aria-labelledby="analyze-title">
            <h2 id="analyze-title">"Analyse a post"</h2>
            <label for="analyze-input" class="sr-only">"Text to analyse"</label>
            <textarea
                id="analyze-input"
                data-testid="analyze-input"
                rows="4"
                placeholder="Paste a post… (Ctrl+Enter to analyse)"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                        ev.prevent_default();
                        run();
                    }
                }
            ></textarea>
            <div class="actions">
                <button type="button" class="primary" data-testid="analyze-run"
                    disabled=move || !ready() || running() || text.with(|t| t.trim().is_empty())
                    on:click=move |_| run()
                >{move || if running() { "Analysing…" } else { "Analyse" }}</button>
                <span class="hint">{move || if ready() { "Runs on this device; the text is not sent anywhere." } else { "Waiting for the model…" }}</span>
            </div>
            <div aria-live="polite">{move || result_view(model)}</div>
        </section>
    }
}

fn result_view(model: Model) -> AnyView {
    match model.analysis.get() {
        Analysis::Idle | Analysis::Running { .. } => ().into_any(),
        Analysis::Failed(msg) => view! { <p class="error" role="alert">{msg}</p> }.into_any(),
        Analysis::Done { id, text, prediction, elapsed_ms } => {
            let Some(info) = model.info.get_untracked() else { return ().into_any() };
            let labels = info.manifest.labels.clone();
            let version = info.manifest.version.clone();
            view! {
                <div class="result" data-request=id.to_string()>
                    <p class="verdict">
                        <span class=format!("label label-{}", prediction.label) data-testid="result-label">{prediction.label.clone()}</span>
                        <span class="elapsed" data-testid="result-time">{format!("{elapsed_ms:.1} ms")}</span>
                    </p>
                    <ScoreBars labels=labels.clone() prediction=prediction.clone() />
                    // Built per result, so a new analysis starts with a fresh feedback box.
                    <FeedbackBox text prediction labels model_version=version />
                </div>
            }
            .into_any()
        }
    }
}

/// One bar per label; the number is the score itself (the end-to-end test reads it).
#[component]
pub fn ScoreBars(labels: Vec<String>, prediction: Prediction) -> impl IntoView {
    view! {
        <ul class="scores">
            {labels.into_iter().zip(prediction.scores).map(|(l, s)| view! {
                <li>
                    <span class="score-name">{l.clone()}</span>
                    <span class="bar" role="meter" aria-valuemin="0" aria-valuemax="1" aria-valuenow=s.to_string() aria-label=format!("{l} score")>
                        <span class=format!("fill label-{l}") style:width=format!("{:.2}%", s * 100.0)></span>
                    </span>
                    <span class="score-value" data-testid=format!("score-{l}")>{format!("{s:.6}")}</span>
                </li>
            }).collect_view()}
        </ul>
    }
}
