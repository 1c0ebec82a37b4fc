//! Feedback: the outbox kept in local storage, its sender (first try at once, then a retry
//! every few seconds and when the browser comes back online), and the box under a result.

use super::i18n::{tr, use_i18n, I18n};
use crate::browser::sleep;
use crate::i18n::Msg;
use crate::outbox::{error_text, submission, Delivery, Outbox, Outcome, STORAGE_KEY};
use crate::protocol::Prediction;
use crate::UNSURE_THRESHOLD;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::FeedbackSubmission;
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

/// The delivery state of a record as a machine word (`data-state`) and a sentence (tracked).
pub fn delivery_text(i: I18n, d: Option<&Delivery>) -> (&'static str, String) {
    match d {
        None => ("", String::new()),
        Some(Delivery::Waiting { attempts: 0, .. }) => ("sending", i.t(Msg::FeedbackSending).to_string()),
        Some(Delivery::Waiting { last_error, .. }) => {
            ("waiting", i.f(Msg::FeedbackWaiting, &[("detail", last_error.as_deref().unwrap_or_default())]))
        }
        Some(Delivery::Sent) => ("sent", i.t(Msg::FeedbackSent).to_string()),
        Some(Delivery::Failed { reason }) => ("failed", i.f(Msg::FeedbackFailed, &[("detail", reason)])),
    }
}

/// "Was this right?" under one result. Re-created for every result, so its state is per text.
#[component]
pub fn FeedbackBox(text: String, prediction: Prediction, labels: Vec<String>, model_version: String) -> impl IntoView {
    let fb = expect_context::<Feedback>();
    let i = use_i18n();
    let chosen = RwSignal::new(None::<String>);
    let note = RwSignal::new(String::new());
    let sent_id = RwSignal::new(None::<String>);
    let unsure = prediction.top_score() < UNSURE_THRESHOLD;

    let context = StoredValue::new((text, prediction.clone(), labels.clone(), model_version));
    let send = move |label: String| {
        let sub = context.with_value(|(text, prediction, labels, version)| {
            submission(text, prediction, labels, version, &label, Some(note.get_untracked()))
        });
        sent_id.set(Some(fb.submit(sub)));
    };
    let predicted = prediction.label.clone();
    let state = move || {
        let id = sent_id.get()?;
        fb.outbox.with(|o| o.get(&id).map(|i| i.delivery.clone()))
    };
    let shown = move || delivery_text(i, state().as_ref());

    view! {
        <section class="feedback" class:insistent=unsure aria-labelledby="feedback-title">
            <h3 id="feedback-title">{move || i.t(if unsure { Msg::FeedbackUnsure } else { Msg::FeedbackQuestion })}</h3>
            <Show
                when=move || sent_id.get().is_none()
                fallback=move || view! {
                    <p class="feedback-state" aria-live="polite">
                        <span data-testid="feedback-state" data-state=move || shown().0 class=move || format!("state-{}", shown().0)>
                            {move || i.t(match shown().0 {
                                "sending" => Msg::StateSending,
                                "waiting" => Msg::StateWaiting,
                                "sent" => Msg::StateSent,
                                _ => Msg::StateFailed,
                            })}
                        </span>
                        " "
                        <span class="state-text">{move || shown().1}</span>
                    </p>
                }
            >
                <div class="feedback-row">
                    <button type="button" class="right" data-testid="feedback-right" on:click={
                        let p = predicted.clone();
                        move |_| send(p.clone())
                    }>{tr(Msg::FeedbackRight)}</button>
                    <span class="or">{tr(Msg::FeedbackOrItIs)}</span>
                    {labels.iter().map(|l| {
                        let lc = l.clone();
                        let pressed = move || chosen.get().as_deref() == Some(lc.as_str());
                        let lv = l.clone();
                        let name = l.clone();
                        view! {
                            <button
                                type="button"
                                class=format!("pick label-{l}")
                                data-testid=format!("feedback-label-{l}")
                                aria-pressed=move || if pressed() { "true" } else { "false" }
                                on:click=move |_| chosen.set(Some(lv.clone()))
                            >{move || i.label(&name)}</button>
                        }
                    }).collect_view()}
                </div>
                <label class="note">
                    {tr(Msg::FeedbackNote)}
                    <input type="text" maxlength="1000" prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev)) />
                </label>
                <button type="button" class="primary" data-testid="feedback-send"
                    disabled=move || chosen.get().is_none()
                    on:click=move |_| if let Some(l) = chosen.get_untracked() { send(l) }
                >{tr(Msg::FeedbackSend)}</button>
            </Show>
        </section>
    }
}

/// How many records wait for the server, shown in the header.
#[component]
pub fn OutboxBadge() -> impl IntoView {
    let fb = expect_context::<Feedback>();
    let i = use_i18n();
    let waiting = move || fb.outbox.with(|o| o.waiting());
    view! {
        <Show when=move || { waiting() > 0 }>
            <span class="badge" title=tr(Msg::OutboxBadgeTitle)>
                {move || i.f(Msg::OutboxBadge, &[("n", &waiting().to_string())])}
            </span>
        </Show>
    }
}
