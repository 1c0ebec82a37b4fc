//! The review queue: a batch's rows as a table, least confident first, sortable and filterable
//! by confidence and label, each row corrected in place with buttons or keys (1/2/3 a label,
//! Enter "right", arrows to move, E to explain). Every review is a feedback record through the
//! same outbox as the single-post form (`crate::review` says how changes of mind are sent); the
//! reviews are kept in local storage with the results.

use super::batch::download;
use super::explain::{ExplainButton, ExplanationView};
use super::feedback::{delivery_text, Feedback};
use super::i18n::{tr, use_i18n};
use super::model::{ExplainTarget, Model};
use crate::batch::results::{to_csv, to_jsonl, SortKey};
use crate::i18n::Msg;
use crate::outbox::{submission, Delivery};
use crate::review::{
    after_review, key_action, queue, KeyAction, QueueView, Review, Reviews, SavedResults, Shown, REVIEWS_KEY,
};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Rows drawn in the table at once; the exports always have every row.
const TABLE_LIMIT: usize = 1_000;

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Moves keyboard focus to the row with this index (and so scrolls it into view).
fn focus_row(index: usize) {
    let el = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(&format!("tr[data-row=\"{index}\"]")).ok().flatten());
    if let Some(el) = el.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
        let _ = el.focus();
    }
}

#[component]
pub fn ReviewQueue(results: SavedResults) -> impl IntoView {
    let fb = expect_context::<Feedback>();
    let model = expect_context::<Model>();
    let i = use_i18n();
    let saved = storage().and_then(|s| s.get_item(REVIEWS_KEY).ok().flatten());
    let reviews = RwSignal::new(Reviews::restore(saved.as_deref(), &results.batch_id));
    let data = StoredValue::new(results);
    let labels = data.with_value(|r| r.labels.clone());
    let view_state = RwSignal::new(QueueView::default());
    let order = Memo::new(move |_| {
        let v = view_state.get();
        // Only the reviewed/unreviewed filter depends on the reviews: don't re-sort per review.
        let r = if v.shown == Shown::All { reviews.get_untracked() } else { reviews.get() };
        data.with_value(|d| queue(&d.rows, &r, &v))
    });
    let active = RwSignal::new(None::<usize>);
    let total = data.with_value(|d| d.rows.len());

    let review = move |index: usize, label: String| {
        if reviews.with_untracked(|r| r.by_row.get(&index).is_some_and(|x| x.label == label)) {
            return; // the same answer again: nothing new to send
        }
        let sub = data.with_value(|d| {
            let row = &d.rows[index - 1];
            submission(&row.text, &row.prediction(), &d.labels, &d.model_version, &label, None)
        });
        let feedback_id = fb.submit(sub);
        reviews.update(|r| {
            r.by_row.insert(index, Review { label, feedback_id });
        });
        if let Some(s) = storage() {
            // A full storage only loses the progress figure after a reload; the records are sent.
            let _ = s.set_item(
                REVIEWS_KEY,
                &reviews.with_untracked(|r| serde_json::to_string(r).expect("reviews serialize")),
            );
        }
        let o = order.get_untracked();
        if let Some(at) = o.iter().position(|&x| x == index) {
            let next = o[reviews.with_untracked(|r| after_review(&o, at, r))];
            active.set(Some(next));
            focus_row(next);
        }
    };

    let label_count = labels.len();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let Some(action) = key_action(&ev.key(), label_count) else { return };
        // Enter on a focused button or field is theirs.
        let on_control = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "BUTTON" | "SELECT" | "INPUT"));
        if on_control && action == KeyAction::Right {
            return;
        }
        let o = order.get_untracked();
        if o.is_empty() {
            return;
        }
        ev.prevent_default();
        let at = active.get_untracked().and_then(|a| o.iter().position(|&x| x == a));
        let move_to = |n: usize| {
            active.set(Some(o[n]));
            focus_row(o[n]);
        };
        let Some(at) = at else { return move_to(0) };
        let index = o[at];
        match action {
            KeyAction::Next => move_to((at + 1).min(o.len() - 1)),
            KeyAction::Previous => move_to(at.saturating_sub(1)),
            KeyAction::First => move_to(0),
            KeyAction::Last => move_to(o.len() - 1),
            KeyAction::Label(n) => review(index, data.with_value(|d| d.labels[n].clone())),
            KeyAction::Right => review(index, data.with_value(|d| d.rows[index - 1].label.clone())),
            KeyAction::Explain => {
                let text = data.with_value(|d| d.rows[index - 1].text.clone());
                model.explain(ExplainTarget::Row(index), text);
            }
        }
    };

    let reviewed_labels = move || reviews.with_untracked(|r| r.labels());
    let export = move |name: &str, mime: &str, content: String| {
        if let Err(e) = download(name, mime, &content) {
            web_sys::console::error_1(&e.into());
        }
    };
    let export_csv = move |_| {
        export(
            "sentiment-results.csv",
            "text/csv;charset=utf-8",
            data.with_value(|d| to_csv(&d.rows, &d.labels, &reviewed_labels())),
        )
    };
    let export_jsonl = move |_| {
        export(
            "sentiment-results.jsonl",
            "application/x-ndjson;charset=utf-8",
            data.with_value(|d| to_jsonl(&d.rows, &d.labels, &reviewed_labels())),
        )
    };

    let header = move |name: Box<dyn Fn() -> String + Send + Sync>, key: SortKey| {
        let aria = move || match view_state.with(|v| (v.sort, v.descending)) {
            (k, false) if k == key => "ascending",
            (k, true) if k == key => "descending",
            _ => "none",
        };
        view! {
            <th aria-sort=aria>
                <button type="button" class="sort" on:click=move |_| view_state.update(|v| {
                    v.descending = v.sort == key && !v.descending;
                    v.sort = key;
                })>
                    {name}
                    {move || match aria() { "ascending" => " ▲", "descending" => " ▼", _ => "" }}
                </button>
            </th>
        }
    };
    let label_options = labels.clone();
    let score_headers = labels
        .iter()
        .enumerate()
        .map(|(n, l)| {
            let l = l.clone();
            header(Box::new(move || i.label(&l)), SortKey::Score(n))
        })
        .collect_view();

    view! {
        <div class="review-queue" data-testid="review-queue">
            <div class="table-tools">
                <p class="review-progress" data-testid="review-progress" aria-live="polite"
                    data-done=move || reviews.with(|r| r.by_row.len()).to_string() data-total=total.to_string()>
                    <progress max=total.max(1) value=move || reviews.with(|r| r.by_row.len())></progress>" "
                    {move || i.f(Msg::ReviewProgress, &[("done", &reviews.with(|r| r.by_row.len()).to_string()), ("total", &total.to_string())])}
                </p>
                <label>{tr(Msg::ShowLabel)}" "
                    <select data-testid="batch-filter" on:change=move |ev| {
                        let v = event_target_value(&ev);
                        view_state.update(|s| s.label = Some(v).filter(|v| !v.is_empty()));
                    }>
                        <option value="">{tr(Msg::AllLabels)}</option>
                        {label_options.into_iter().map(|l| {
                            let name = l.clone();
                            view! { <option value=l>{move || i.label(&name)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>{tr(Msg::ConfidenceLabel)}" "
                    <select data-testid="review-confidence" on:change=move |ev| {
                        let below = event_target_value(&ev).parse::<f64>().ok();
                        view_state.update(|s| s.below = below);
                    }>
                        <option value="">{tr(Msg::AnyConfidence)}</option>
                        {[0.9, 0.8, 0.6].into_iter().map(|b| view! {
                            <option value=b.to_string()>{move || i.f(Msg::ConfidenceBelow, &[("percent", &i.percent(b, 0))])}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>{tr(Msg::ReviewShown)}" "
                    <select data-testid="review-shown" on:change=move |ev| {
                        let shown = match event_target_value(&ev).as_str() {
                            "unreviewed" => Shown::Unreviewed,
                            "reviewed" => Shown::Reviewed,
                            _ => Shown::All,
                        };
                        view_state.update(|s| s.shown = shown);
                    }>
                        <option value="all">{tr(Msg::ShownAll)}</option>
                        <option value="unreviewed">{tr(Msg::ShownUnreviewed)}</option>
                        <option value="reviewed">{tr(Msg::ShownReviewed)}</option>
                    </select>
                </label>
                <span class="hint" data-testid="review-count">{move || {
                    let n = order.with(|o| o.len());
                    if n > TABLE_LIMIT {
                        i.f(Msg::RowsShownLimited, &[("limit", &TABLE_LIMIT.to_string()), ("n", &n.to_string()), ("total", &total.to_string())])
                    } else {
                        i.f(Msg::RowsShown, &[("n", &n.to_string()), ("total", &total.to_string())])
                    }
                }}</span>
                <button type="button" data-testid="batch-export" on:click=export_csv>{tr(Msg::ExportCsv)}</button>
                <button type="button" data-testid="batch-export-jsonl" on:click=export_jsonl>{tr(Msg::ExportJsonl)}</button>
            </div>
            <p class="hint keys-hint" id="review-keys">{tr(Msg::ReviewKeys)}</p>
            <div class="table-wrap">
                <table data-testid="batch-table" aria-describedby="review-keys">
                    <thead>
                        <tr>
                            {header(Box::new(|| "#".to_string()), SortKey::Index)}
                            {header(Box::new(move || i.t(Msg::ColText).to_string()), SortKey::Text)}
                            {header(Box::new(move || i.t(Msg::ColDate).to_string()), SortKey::Date)}
                            {header(Box::new(move || i.t(Msg::ColLabel).to_string()), SortKey::Label)}
                            {header(Box::new(move || i.t(Msg::ColConfidence).to_string()), SortKey::Confidence)}
                            {score_headers}
                            <th class="review-col">{tr(Msg::ColReview)}</th>
                        </tr>
                    </thead>
                    <tbody on:keydown=on_key>
                        <For
                            each=move || order.get().into_iter().take(TABLE_LIMIT)
                            key=|index| *index
                            let:index
                        >
                            <ReviewRow index data reviews active review />
                        </For>
                    </tbody>
                </table>
            </div>
        </div>
    }
}

#[component]
fn ReviewRow(
    index: usize,
    data: StoredValue<SavedResults>,
    reviews: RwSignal<Reviews>,
    active: RwSignal<Option<usize>>,
    review: impl Fn(usize, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let fb = expect_context::<Feedback>();
    let model = expect_context::<Model>();
    let i = use_i18n();
    let (row, labels) = data.with_value(|d| (d.rows[index - 1].clone(), d.labels.clone()));
    let given = Memo::new(move |_| reviews.with(|r| r.by_row.get(&index).cloned()));
    let state = move || {
        let Review { feedback_id, .. } = given.get()?;
        // Sent records leave the outbox after a while: absent means delivered.
        Some(fb.outbox.with(|o| o.get(&feedback_id).map(|x| x.delivery.clone())).unwrap_or(Delivery::Sent))
    };
    let is_active = move || active.get() == Some(index);
    let predicted = row.label.clone();
    let columns = 6 + labels.len();
    let text = row.text.clone();
    view! {
        <tr data-row=index.to_string() data-testid="review-row" data-label=row.label.clone()
            tabindex=move || if is_active() { "0" } else { "-1" }
            class:active=is_active class:reviewed=move || given.with(|g| g.is_some())
            aria-selected=move || is_active().to_string()
            on:focusin=move |_| active.set(Some(index))
        >
            <td class="num">{index}</td>
            <td class="text" translate="no">{row.text.clone()}</td>
            <td class="date" translate="no" title=row.date.clone().unwrap_or_default()>{row.day.clone().or(row.date.clone()).unwrap_or_default()}</td>
            <td><span class=format!("label label-{}", row.label)>{{
                let l = row.label.clone();
                move || i.label(&l)
            }}</span></td>
            <td class="num" data-confidence=row.confidence().to_string()>{{
                let c = row.confidence();
                move || i.num(c, 3)
            }}</td>
            {row.scores.iter().map(|&s| view! { <td class="num">{move || i.num(s, 3)}</td> }).collect_view()}
            <td class="review-cell">
                <div class="review" role="group" aria-label=move || i.f(Msg::ReviewRowAria, &[("n", &index.to_string())])>
                    <div class="review-buttons">
                    <button type="button" class="right" data-testid="review-right" tabindex="-1"
                        aria-pressed=move || given.with(|g| g.as_ref().is_some_and(|g| g.label == predicted)).to_string()
                        title=tr(Msg::ReviewRightTitle)
                        on:click={
                            let p = row.label.clone();
                            move |_| review(index, p.clone())
                        }
                    >"✓"</button>
                    {labels.iter().enumerate().map(|(n, l)| {
                        let (lv, lc, name) = (l.clone(), l.clone(), l.clone());
                        view! {
                            <button type="button" class=format!("pick label-{l}") data-testid=format!("review-label-{l}") tabindex="-1"
                                aria-pressed=move || given.with(|g| g.as_ref().is_some_and(|g| g.label == lc)).to_string()
                                on:click=move |_| review(index, lv.clone())
                            >
                                <kbd>{n + 1}</kbd>" "{move || i.label(&name)}
                            </button>
                        }
                    }).collect_view()}
                    </div>
                    <div class="review-meta">
                    <span class="review-state" data-testid="review-state" data-state=move || delivery_text(i, state().as_ref()).0>
                        {move || match state() {
                            None => String::new(),
                            Some(d) => i.t(match d {
                                Delivery::Sent => Msg::StateSent,
                                Delivery::Failed { .. } => Msg::StateFailed,
                                Delivery::Waiting { attempts: 0, .. } => Msg::StateSending,
                                Delivery::Waiting { .. } => Msg::StateWaiting,
                            }).to_string(),
                        }}
                    </span>
                    <ExplainButton target=ExplainTarget::Row(index) text=text.clone() />
                    </div>
                </div>
            </td>
        </tr>
        {move || (model.explain.with(|e| e.target() == Some(ExplainTarget::Row(index)))).then(|| view! {
            <tr class="explain-row"><td colspan=columns.to_string()>
                <ExplanationView target=ExplainTarget::Row(index) text=text.clone() />
            </td></tr>
        })}
    }
}
