//! Many texts: paste lines or open a CSV/JSONL export, pick the columns, run in the worker with
//! progress and cancel, then explore the results (distribution, daily trend) and review them
//! (`review`). The last results and their review survive a reload (local storage).

use super::i18n::{tr, use_i18n, I18n};
use super::model::{describe, BatchRun, Model, Status};
use super::review::ReviewQueue;
use crate::batch::input::{Entry, InputError, InputFormat, Table};
use crate::batch::results::{daily_shares, distribution, BatchRow, DayShare};
use crate::browser::js_error_text;
use crate::i18n::Msg;
use crate::review::{SavedResults, RESULTS_KEY, REVIEWS_KEY};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The results of the last batch, from local storage.
fn saved_results() -> Option<SavedResults> {
    let json = storage()?.get_item(RESULTS_KEY).ok()??;
    serde_json::from_str(&json).ok()
}

/// Keeps `results` for the next visit; false when local storage refused them (too large).
fn save_results(results: &SavedResults) -> bool {
    let Some(s) = storage() else { return false };
    let _ = s.remove_item(REVIEWS_KEY);
    match s.set_item(RESULTS_KEY, &serde_json::to_string(results).expect("results serialize")) {
        Ok(()) => true,
        Err(_) => {
            let _ = s.remove_item(RESULTS_KEY);
            false
        }
    }
}

fn forget_results() {
    if let Some(s) = storage() {
        let _ = s.remove_item(RESULTS_KEY);
        let _ = s.remove_item(REVIEWS_KEY);
    }
}

/// A batch id: random, so a stored review never attaches to other results. (Hex by hand, not
/// `hex::encode`, for the page's size: see `outbox::uuid_v4`.)
fn new_batch_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("crypto.getRandomValues is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the results on screen came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// This visit's batch, kept for a reload.
    Fresh { kept: bool },
    /// The last visit's.
    Restored,
}

fn input_error_text(i: I18n, e: &InputError) -> String {
    match e {
        InputError::Empty => i.t(Msg::InputEmpty).to_string(),
        InputError::UnclosedQuote { line } => i.f(Msg::InputUnclosedQuote, &[("line", &line.to_string())]),
        InputError::Json { line, detail } => i.f(Msg::InputJson, &[("line", &line.to_string()), ("detail", detail)]),
        InputError::NotObject { line } => i.f(Msg::InputNotObject, &[("line", &line.to_string())]),
        InputError::NoColumn(c) => i.f(Msg::InputNoColumn, &[("column", c)]),
        InputError::EmptyText { row } => i.f(Msg::InputEmptyText, &[("row", &row.to_string())]),
    }
}

/// A problem with the batch input, kept as data so it is shown in the current language.
#[derive(Debug, Clone, PartialEq)]
enum InputProblem {
    Parse(InputError),
    NoTextColumn,
    Nothing,
    FileUnreadable { name: String, detail: String },
}

#[component]
pub fn BatchPanel() -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
    let raw = RwSignal::new(String::new());
    let file_name = RwSignal::new(None::<String>);
    let format = RwSignal::new(InputFormat::Auto);
    let text_col = RwSignal::new(None::<String>);
    let date_col = RwSignal::new(None::<String>);
    let input_error = RwSignal::new(None::<InputProblem>);
    let textarea = NodeRef::<leptos::html::Textarea>::new();
    // Whether the textarea has changed since `raw` last read it (see `on_input`).
    let stale = StoredValue::new(false);
    // The textarea's text into `raw` (and so into the parsed table), if it changed.
    let take_input = move || {
        if stale.get_value() {
            stale.set_value(false);
            if let Some(el) = textarea.get_untracked() {
                file_name.set(None);
                raw.set(el.value());
            }
        }
    };
    // Read once per burst of input events, not per event: pasting or inserting many lines can
    // fire an event per line (Chromium's insertText: 2,000 for 1,000 lines), and reading and
    // parsing the whole text each time made taking 1.5 MB of text cost ~16 s on its own.
    let on_input = move |_| {
        if !stale.get_value() {
            stale.set_value(true);
            set_timeout(take_input, std::time::Duration::ZERO);
        }
    };
    // The entries of the batch being run (predictions come back in this order).
    let entries = StoredValue::new(Vec::<Entry>::new());
    // The results on screen: this visit's last batch, or the last visit's.
    let restored = saved_results();
    let origin = RwSignal::new(restored.as_ref().map(|_| Origin::Restored));
    let results = RwSignal::new(restored);

    // A finished batch becomes the results (and is kept for a reload).
    Effect::new(move |_| {
        if let BatchRun::Done { predictions, elapsed_ms, .. } = model.batch.get() {
            let Some(info) = model.info.get_untracked() else { return };
            let rows: Vec<BatchRow> = entries
                .get_value()
                .into_iter()
                .zip(predictions)
                .enumerate()
                .map(|(n, (e, p))| BatchRow::new(n + 1, e, p))
                .collect();
            let r = SavedResults {
                batch_id: new_batch_id(),
                model_version: info.manifest.version.clone(),
                labels: info.manifest.labels.clone(),
                rows,
                elapsed_ms,
            };
            let kept = save_results(&r);
            origin.set(Some(Origin::Fresh { kept }));
            results.set(Some(r));
        }
    });

    let table = Memo::new(move |_| {
        let r = raw.get();
        if r.trim().is_empty() {
            return Ok(Table::default());
        }
        file_name.with(|f| Table::parse(&r, format.get(), f.as_deref()))
    });
    // New input → the guessed columns, unless the user's choice still exists.
    Effect::new(move |_| {
        if let Ok(t) = table.get() {
            if text_col.get_untracked().is_none_or(|c| t.column(&c).is_none()) {
                text_col.set(t.guess_text_column());
            }
            if date_col.get_untracked().is_some_and(|c| t.column(&c).is_none()) || date_col.get_untracked().is_none() {
                date_col.set(t.guess_date_column());
            }
        }
    });

    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        file_name.set(Some(file.name()));
        spawn_local(async move {
            match JsFuture::from(file.text()).await {
                Ok(t) => {
                    input_error.set(None);
                    // The file replaces whatever was typed before it.
                    stale.set_value(false);
                    raw.set(t.as_string().unwrap_or_default());
                }
                Err(e) => {
                    input_error.set(Some(InputProblem::FileUnreadable { name: file.name(), detail: js_error_text(&e) }))
                }
            }
        });
    };

    let running = move || model.batch.with(|b| matches!(b, BatchRun::Running { .. }));
    let ready = move || model.status.with(|s| *s == Status::Ready);
    let run = move |_| {
        take_input();
        let t = match table.get_untracked() {
            Ok(t) => t,
            Err(e) => return input_error.set(Some(InputProblem::Parse(e))),
        };
        let Some(tc) = text_col.get_untracked() else {
            return input_error.set(Some(InputProblem::NoTextColumn));
        };
        match t.entries(&tc, date_col.get_untracked().as_deref()) {
            Ok(e) if e.is_empty() => input_error.set(Some(InputProblem::Nothing)),
            Ok(e) => {
                input_error.set(None);
                let texts = e.iter().map(|x| x.text.clone()).collect();
                entries.set_value(e);
                model.run_batch(texts);
            }
            Err(e) => input_error.set(Some(InputProblem::Parse(e))),
        }
    };
    let problem_text = move |p: &InputProblem| match p {
        InputProblem::Parse(e) => input_error_text(i, e),
        InputProblem::NoTextColumn => i.t(Msg::InputPickTextColumn).to_string(),
        InputProblem::Nothing => i.t(Msg::InputNothing).to_string(),
        InputProblem::FileUnreadable { name, detail } => {
            i.f(Msg::InputFileUnreadable, &[("file", name), ("detail", detail)])
        }
    };

    let columns = move || table.with(|t| t.as_ref().map(|t| t.columns.clone()).unwrap_or_default());
    let summary = move || match table.get() {
        Ok(t) if t.rows.is_empty() => String::new(),
        Ok(t) => i.f(Msg::InputSummary, &[("rows", &t.rows.len().to_string()), ("columns", &t.columns.join(", "))]),
        Err(e) => input_error_text(i, &e),
    };
    let clear = move |_| {
        forget_results();
        results.set(None);
        origin.set(None);
    };

    view! {
        <section class="panel" aria-labelledby="batch-title">
            <h2 id="batch-title">{tr(Msg::BatchTitle)}</h2>
            <label for="batch-input">{tr(Msg::BatchInputLabel)}</label>
            <textarea id="batch-input" data-testid="batch-input" rows="5" node_ref=textarea
                prop:value=move || raw.get()
                on:input=on_input
            ></textarea>
            <div class="batch-controls">
                <label>{tr(Msg::BatchOpenFile)}" "
                    <input type="file" accept=".csv,.jsonl,.ndjson,.json,.txt,text/csv,text/plain" data-testid="batch-file" on:change=on_file />
                </label>
                <label>{tr(Msg::BatchFormat)}" "
                    <select on:change=move |ev| format.set(match event_target_value(&ev).as_str() {
                        "lines" => InputFormat::Lines, "csv" => InputFormat::Csv, "jsonl" => InputFormat::Jsonl, _ => InputFormat::Auto,
                    })>
                        <option value="auto">{tr(Msg::FormatAuto)}</option>
                        <option value="lines">{tr(Msg::FormatLines)}</option>
                        <option value="csv">"CSV"</option>
                        <option value="jsonl">"JSONL"</option>
                    </select>
                </label>
                <label>{tr(Msg::BatchTextColumn)}" "
                    <select data-testid="batch-text-column" translate="no" on:change=move |ev| text_col.set(Some(event_target_value(&ev)))>
                        {move || columns().into_iter().map(|c| {
                            let sel = text_col.get().as_deref() == Some(c.as_str());
                            view! { <option value=c.clone() selected=sel>{c.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>{tr(Msg::BatchDateColumn)}" "
                    <select data-testid="batch-date-column" translate="no" on:change=move |ev| {
                        let v = event_target_value(&ev);
                        date_col.set(Some(v).filter(|v| !v.is_empty()))
                    }>
                        <option value="" selected=move || date_col.get().is_none()>{tr(Msg::NoDateColumn)}</option>
                        {move || columns().into_iter().map(|c| {
                            let sel = date_col.get().as_deref() == Some(c.as_str());
                            view! { <option value=c.clone() selected=sel>{c.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            <p class="hint" aria-live="polite">{summary}</p>
            <div class="actions">
                <button type="button" class="primary" data-testid="batch-run"
                    disabled=move || !ready() || running() || table.with(|t| t.as_ref().map(|t| t.rows.is_empty()).unwrap_or(true))
                    on:click=run>{tr(Msg::AnalyseAll)}</button>
                <Show when=running>
                    <button type="button" data-testid="batch-cancel" on:click=move |_| model.cancel_batch()>{tr(Msg::Cancel)}</button>
                </Show>
            </div>
            {move || input_error.get().map(|e| view! { <p class="error" role="alert">{move || problem_text(&e)}</p> })}
            <BatchStatus />
            {move || (!running()).then(|| results.get().map(|r| view! {
                <BatchResults results=r origin=origin.get_untracked() on_clear=clear />
            }))}
        </section>
    }
}

/// Progress, cancel and failure of the batch in the worker.
#[component]
fn BatchStatus() -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
    move || match model.batch.get() {
        BatchRun::Idle | BatchRun::Done { .. } => ().into_any(),
        BatchRun::Running { done, total, .. } => view! {
            <div class="progress" data-testid="batch-progress" aria-live="polite">
                <progress max=total.max(1) value=done></progress>
                <span>{format!("{done} / {total}")}</span>
            </div>
        }
        .into_any(),
        BatchRun::Cancelled { done, total } => view! {
            <p class="notice" data-testid="batch-progress" data-state="cancelled" data-done=done.to_string()>
                {move || i.f(Msg::BatchCancelled, &[("done", &done.to_string()), ("total", &total.to_string())])}
            </p>
        }
        .into_any(),
        BatchRun::Failed(problem) => {
            view! { <p class="error" role="alert">{move || describe(i, &problem)}</p> }.into_any()
        }
    }
}

#[component]
fn BatchResults(
    results: SavedResults,
    origin: Option<Origin>,
    on_clear: impl Fn(()) + Copy + 'static,
) -> impl IntoView {
    let i = use_i18n();
    let n = results.rows.len();
    let elapsed_ms = results.elapsed_ms;
    let labels = results.labels.clone();
    let counts = distribution(&results.rows, &labels);
    let days = daily_shares(&results.rows, &labels);
    let version = results.model_version.clone();
    let origin_note = move || match origin {
        Some(Origin::Restored) => Some(i.f(Msg::BatchRestored, &[("version", &version)])),
        Some(Origin::Fresh { kept: false }) => Some(i.t(Msg::BatchNotKept).to_string()),
        _ => None,
    };
    view! {
        <div class="batch-results">
            <p class="notice" data-testid="batch-done" data-rows=n.to_string()>
                {move || i.f(Msg::BatchDone, &[
                    ("n", &n.to_string()),
                    ("seconds", &i.num(elapsed_ms / 1000.0, 1)),
                    ("rate", &i.num(n as f64 / (elapsed_ms / 1000.0).max(1e-6), 0)),
                ])}
                " "<button type="button" class="link" data-testid="batch-clear" on:click=move |_| on_clear(())>{tr(Msg::BatchClear)}</button>
            </p>
            {move || origin_note().map(|t| view! { <p class="hint" data-testid="batch-origin">{t}</p> })}
            <Distribution labels=labels.clone() counts />
            <DailyChart labels=labels.clone() days />
            <ReviewQueue results />
        </div>
    }
}

#[component]
fn Distribution(labels: Vec<String>, counts: Vec<usize>) -> impl IntoView {
    let i = use_i18n();
    let total: usize = counts.iter().sum::<usize>().max(1);
    view! {
        <figure class="distribution" data-testid="batch-distribution">
            <figcaption>{tr(Msg::LabelDistribution)}</figcaption>
            <ul class="scores">
                {labels.into_iter().zip(counts).map(|(l, c)| {
                    let share = c as f64 / total as f64;
                    let name = l.clone();
                    view! {
                        <li>
                            <span class="score-name">{move || i.label(&name)}</span>
                            <span class="bar"><span class=format!("fill label-{l}") style:width=format!("{:.2}%", share * 100.0)></span></span>
                            <span class="score-value" data-testid=format!("batch-count-{l}") data-count=c.to_string()>
                                {move || format!("{c} ({})", i.percent(share, 1))}
                            </span>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </figure>
    }
}

/// The daily share of each label as stacked columns: the reputation over time.
#[component]
fn DailyChart(labels: Vec<String>, days: Vec<DayShare>) -> impl IntoView {
    let i = use_i18n();
    if days.is_empty() {
        return view! { <p class="hint">{tr(Msg::NoTrendChart)}</p> }.into_any();
    }
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 36.0;
    const BOTTOM: f64 = 24.0;
    let plot_w = W - LEFT - 4.0;
    let plot_h = H - BOTTOM - 8.0;
    let step = plot_w / days.len() as f64;
    let bar_w = (step * 0.85).max(1.0);
    let first = days.first().map(|d| d.day.clone()).unwrap_or_default();
    let last = days.last().map(|d| d.day.clone()).unwrap_or_default();
    let n_days = days.len();
    let aria = {
        let (first, last) = (first.clone(), last.clone());
        move || i.f(Msg::ChartAria, &[("first", &first), ("last", &last)])
    };
    let mut rects = Vec::new();
    for (n, d) in days.iter().enumerate() {
        let x = LEFT + n as f64 * step + (step - bar_w) / 2.0;
        let mut y = 8.0 + plot_h;
        for (li, l) in labels.iter().enumerate() {
            let h = d.share(li) * plot_h;
            y -= h;
            rects.push(view! {
                <rect x=format!("{x:.2}") y=format!("{y:.2}") width=format!("{bar_w:.2}") height=format!("{h:.2}")
                    class=format!("label-{l}") data-day=d.day.clone() data-label=l.clone() data-share=format!("{:.4}", d.share(li)) />
            });
        }
    }
    let legend = labels
        .iter()
        .map(|l| {
            let name = l.clone();
            view! { <span class=format!("legend label-{l}")>{move || i.label(&name)}</span> }
        })
        .collect_view();
    view! {
        <figure class="chart" data-testid="batch-chart">
            <figcaption>{move || i.f(Msg::ChartTitle, &[("days", &n_days.to_string())])} " " {legend}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=aria preserveAspectRatio="none">
                <line x1=LEFT y1="8" x2=LEFT y2=8.0 + plot_h class="axis" />
                <line x1=LEFT y1=8.0 + plot_h / 2.0 x2=W - 4.0 y2=8.0 + plot_h / 2.0 class="grid" />
                <text x="2" y="14" class="tick">"100%"</text>
                <text x="2" y=12.0 + plot_h / 2.0 class="tick">"50%"</text>
                <text x="2" y=8.0 + plot_h class="tick">"0%"</text>
                {rects}
                <text x=LEFT y=H - 6.0 class="tick">{first}</text>
                <text x=W - 4.0 y=H - 6.0 class="tick end">{last}</text>
            </svg>
        </figure>
    }
    .into_any()
}

/// Saves `content` as a file through a temporary object URL.
pub fn download(name: &str, mime: &str, content: &str) -> Result<(), String> {
    let err = |e: wasm_bindgen::JsValue| js_error_text(&e);
    let parts = js_sys::Array::of1(&content.into());
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).map_err(err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc.create_element("a").map_err(err)?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url).map_err(err)?;
    Ok(())
}
