//! Feedback: the outbox kept in local storage, its sender (first try at once, then a retry
//! every few seconds and when the browser comes back online), and the box under a result.

use crate::browser::sleep;
use crate::outbox::{error_text, Delivery, Outbox, Outcome, STORAGE_KEY};
use crate::protocol::Prediction;
use crate::UNSURE_THRESHOLD;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::FeedbackSubmission;
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Delay between retries of waiting records.
const RETRY_MS: i32 = 3_000;

#[derive(Clone, Copy)]
pub struct Feedback {
    pub outbox: RwSignal<Outbox>,
    url: StoredValue<String>,
    in_flight: StoredValue<Vec<String>>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    // getrandom uses crypto.getRandomValues; it only fails where no browser crypto exists.
    getrandom::fill(&mut bytes).expect("crypto.getRandomValues is available");
    crate::outbox::uuid_v4(bytes)
}

impl Feedback {
    /// Loads the outbox, sends what was waiting from an earlier visit and starts the retry loop.
    pub fn start(url: String) -> Feedback {
        let saved = storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
        let fb = Feedback {
            outbox: RwSignal::new(Outbox::from_json(saved.as_deref())),
            url: StoredValue::new(url),
            in_flight: StoredValue::new(Vec::new()),
        };
        spawn_local(async move {
            loop {
                fb.flush();
                sleep(RETRY_MS).await;
            }
        });
        let on_online = Closure::<dyn FnMut()>::new(move || fb.flush());
        if let Some(w) = web_sys::window() {
            let _ = w.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
        }
        on_online.forget();
        fb
    }

    fn save(&self) {
        let json = self.outbox.with_untracked(|o| o.to_json());
        if let Some(s) = storage() {
            // A full or disabled storage only loses the retry after a reload.
            let _ = s.set_item(STORAGE_KEY, &json);
        }
    }

    /// Queues a record (stored before the first attempt) and sends it; returns its id.
    pub fn submit(&self, mut sub: FeedbackSubmission) -> String {
        sub.id = random_uuid();
        let id = sub.id.clone();
        self.outbox.update(|o| o.push(sub));
        self.save();
        self.flush();
        id
    }

    /// Sends every waiting record not already in flight.
    pub fn flush(&self) {
        for sub in self.outbox.with_untracked(|o| o.due()) {
            if self.in_flight.with_value(|f| f.contains(&sub.id)) {
                continue;
            }
            self.in_flight.update_value(|f| f.push(sub.id.clone()));
            let fb = *self;
            spawn_local(async move {
                let outcome = post(&fb.url.get_value(), &sub).await;
                fb.outbox.update(|o| o.record(&sub.id, outcome));
                fb.save();
                fb.in_flight.update_value(|f| f.retain(|x| x != &sub.id));
            });
        }
    }
}

async fn post(url: &str, sub: &FeedbackSubmission) -> Outcome {
    let req = match gloo_net::http::Request::post(url).json(sub) {
        Ok(r) => r,
        Err(e) => return Outcome::Unreachable(e.to_string()),
    };
    match req.send().await {
        Ok(resp) if resp.ok() => Outcome::Accepted,
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            Outcome::Status(status, error_text(&body))
        }
        Err(e) => Outcome::Unreachable(e.to_string()),
    }
}

/// "Was this right?" under one result. Re-created for every result, so its state is per text.
#[component]
pub fn FeedbackBox(text: String, prediction: Prediction, labels: Vec<String>, model_version: String) -> impl IntoView {
    let fb = expect_context::<Feedback>();
    let chosen = RwSignal::new(None::<String>);
    let note = RwSignal::new(String::new());
    let sent_id = RwSignal::new(None::<String>);
    let unsure = prediction.top_score() < UNSURE_THRESHOLD;

    let submission = {
        let (text, prediction, labels) = (text.clone(), prediction.clone(), labels.clone());
        move |label: String| FeedbackSubmission {
            id: String::new(),
            text: text.clone(),
            predicted: prediction.label.clone(),
            scores: labels.iter().cloned().zip(prediction.scores.iter().cloned()).collect::<BTreeMap<_, _>>(),
            label,
            model_version: model_version.clone(),
            note: Some(note.get_untracked().trim().to_string()).filter(|n| !n.is_empty()),
        }
    };
    let submission = StoredValue::new(submission);
    let send = move |label: String| {
        let sub = submission.with_value(|make| make(label));
        sent_id.set(Some(fb.submit(sub)));
    };
    let predicted = prediction.label.clone();
    let state = move || {
        let id = sent_id.get()?;
        fb.outbox.with(|o| o.get(&id).map(|i| i.delivery.clone()))
    };
    let state_word = move || match state() {
        None => "",
        Some(Delivery::Waiting { attempts: 0, .. }) => "sending",
        Some(d) => d.word(),
    };
    let state_text = move || match state() {
        None => String::new(),
        Some(Delivery::Waiting { attempts: 0, .. }) => "Sending…".into(),
        Some(Delivery::Waiting { last_error, .. }) => format!(
            "Waiting: the feedback server is unreachable ({}). Kept on this device and retried automatically.",
            last_error.unwrap_or_default()
        ),
        Some(Delivery::Sent) => "Sent — thank you!".into(),
        Some(Delivery::Failed { reason }) => format!("Failed: the server refused it ({reason})."),
    };

    view! {
        <section class="feedback" class:insistent=unsure aria-labelledby="feedback-title">
            <h3 id="feedback-title">
                {if unsure {
                    "The model is unsure — which label is right? Your answer improves it."
                } else {
                    "Was this right?"
                }}
            </h3>
            <Show
                when=move || sent_id.get().is_none()
                fallback=move || view! {
                    <p class="feedback-state" aria-live="polite">
                        <span data-testid="feedback-state" class=move || format!("state-{}", state_word())>{state_word}</span>
                        " "
                        <span class="state-text">{state_text}</span>
                    </p>
                }
            >
                <div class="feedback-row">
                    <button type="button" class="right" data-testid="feedback-right" on:click={
                        let p = predicted.clone();
                        move |_| send(p.clone())
                    }>"✓ Right"</button>
                    <span class="or">"or it is:"</span>
                    {labels.iter().map(|l| {
                        let lc = l.clone();
                        let pressed = move || chosen.get().as_deref() == Some(lc.as_str());
                        let lv = l.clone();
                        view! {
                            <button
                                type="button"
                                class=format!("pick label-{l}")
                                data-testid=format!("feedback-label-{l}")
                                aria-pressed=move || if pressed() { "true" } else { "false" }
                                on:click=move |_| chosen.set(Some(lv.clone()))
                            >{l.clone()}</button>
                        }
                    }).collect_view()}
                </div>
                <label class="note">
                    "Note (optional)"
                    <input type="text" maxlength="1000" prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev)) />
                </label>
                <button type="button" class="primary" data-testid="feedback-send"
                    disabled=move || chosen.get().is_none()
                    on:click=move |_| if let Some(l) = chosen.get_untracked() { send(l) }
                >"Send correction"</button>
            </Show>
        </section>
    }
}

/// How many records wait for the server, shown in the header.
#[component]
pub fn OutboxBadge() -> impl IntoView {
    let fb = expect_context::<Feedback>();
    let waiting = move || fb.outbox.with(|o| o.waiting());
    view! {
        <Show when=move || { waiting() > 0 }>
            <span class="badge" title="Feedback kept on this device until the server is reachable">
                {move || format!("{} feedback waiting", waiting())}
            </span>
        </Show>
    }
}
