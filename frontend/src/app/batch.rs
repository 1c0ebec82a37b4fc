//! Many texts: paste lines or open a CSV/JSONL export, pick the columns, run in the worker with
//! progress and cancel, then explore the results (table, distribution, daily trend, export).

use super::model::{BatchRun, Model, Status};
use crate::batch::input::{Entry, InputFormat, Table};
use crate::batch::results::{daily_shares, distribution, sort_rows, to_csv, BatchRow, DayShare, SortKey};
use crate::browser::js_error_text;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Rows drawn in the table at once; the export always has every row.
const TABLE_LIMIT: usize = 1_000;

#[component]
pub fn BatchPanel() -> impl IntoView {
    let model = expect_context::<Model>();
    let raw = RwSignal::new(String::new());
    let file_name = RwSignal::new(None::<String>);
    let format = RwSignal::new(InputFormat::Auto);
    let text_col = RwSignal::new(None::<String>);
    let date_col = RwSignal::new(None::<String>);
    let input_error = RwSignal::new(None::<String>);
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
    // The entries of the batch being run or shown (predictions come back in this order).
    let entries = RwSignal::new(Vec::<Entry>::new());

    let table = Memo::new(move |_| {
        let r = raw.get();
        if r.trim().is_empty() {
            return Ok(Table::default());
        }
        file_name.with(|f| Table::parse(&r, format.get(), f.as_deref())).map_err(|e| e.to_string())
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
                Err(e) => input_error.set(Some(format!("Could not read {}: {}", file.name(), js_error_text(&e)))),
            }
        });
    };

    let running = move || model.batch.with(|b| matches!(b, BatchRun::Running { .. }));
    let ready = move || model.status.with(|s| *s == Status::Ready);
    let run = move |_| {
        take_input();
        let Ok(t) = table.get_untracked() else { return };
        let Some(tc) = text_col.get_untracked() else {
            input_error.set(Some("Pick the column that holds the text.".into()));
            return;
        };
        match t.entries(&tc, date_col.get_untracked().as_deref()) {
            Ok(e) if e.is_empty() => input_error.set(Some("There is nothing to analyse.".into())),
            Ok(e) => {
                input_error.set(None);
                let texts = e.iter().map(|x| x.text.clone()).collect();
                entries.set(e);
                model.run_batch(texts);
            }
            Err(e) => input_error.set(Some(e.to_string())),
        }
    };

    let columns = move || table.with(|t| t.as_ref().map(|t| t.columns.clone()).unwrap_or_default());
    let summary = move || match table.get() {
        Ok(t) if t.rows.is_empty() => String::new(),
        Ok(t) => format!("{} rows, columns: {}", t.rows.len(), t.columns.join(", ")),
        Err(e) => e,
    };

    view! {
        <section class="panel" aria-labelledby="batch-title">
            <h2 id="batch-title">"Analyse many posts"</h2>
            <label for="batch-input">"Paste one post per line, or CSV/JSONL with a header"</label>
            <textarea id="batch-input" data-testid="batch-input" rows="5" node_ref=textarea
                prop:value=move || raw.get()
                on:input=on_input
            ></textarea>
            <div class="batch-controls">
                <label>"…or open a file "
                    <input type="file" accept=".csv,.jsonl,.ndjson,.json,.txt,text/csv,text/plain" data-testid="batch-file" on:change=on_file />
                </label>
                <label>"Format "
                    <select on:change=move |ev| format.set(match event_target_value(&ev).as_str() {
                        "lines" => InputFormat::Lines, "csv" => InputFormat::Csv, "jsonl" => InputFormat::Jsonl, _ => InputFormat::Auto,
                    })>
                        <option value="auto">"auto"</option>
                        <option value="lines">"lines"</option>
                        <option value="csv">"CSV"</option>
                        <option value="jsonl">"JSONL"</option>
                    </select>
                </label>
                <label>"Text column "
                    <select data-testid="batch-text-column" on:change=move |ev| text_col.set(Some(event_target_value(&ev)))>
                        {move || columns().into_iter().map(|c| {
                            let sel = text_col.get().as_deref() == Some(c.as_str());
                            view! { <option value=c.clone() selected=sel>{c.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"Date column "
                    <select data-testid="batch-date-column" on:change=move |ev| {
                        let v = event_target_value(&ev);
                        date_col.set(Some(v).filter(|v| !v.is_empty()))
                    }>
                        <option value="" selected=move || date_col.get().is_none()>"(none)"</option>
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
                    on:click=run>"Analyse all"</button>
                <Show when=running>
                    <button type="button" data-testid="batch-cancel" on:click=move |_| model.cancel_batch()>"Cancel"</button>
                </Show>
            </div>
            {move || input_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <BatchStatus entries />
        </section>
    }
}

#[component]
fn BatchStatus(entries: RwSignal<Vec<Entry>>) -> impl IntoView {
    let model = expect_context::<Model>();
    move || match model.batch.get() {
        BatchRun::Idle => ().into_any(),
        BatchRun::Running { done, total, .. } => view! {
            <div class="progress" data-testid="batch-progress" aria-live="polite">
                <progress max=total.max(1) value=done></progress>
                <span>{format!("{done} / {total}")}</span>
            </div>
        }
        .into_any(),
        BatchRun::Cancelled { done, total } => view! {
            <p class="notice" data-testid="batch-progress">{format!("Cancelled after {done} of {total}.")}</p>
        }
        .into_any(),
        BatchRun::Failed(msg) => view! { <p class="error" role="alert">{msg}</p> }.into_any(),
        BatchRun::Done { predictions, elapsed_ms, .. } => {
            let labels = model.info.get_untracked().map(|i| i.manifest.labels).unwrap_or_default();
            let rows: Vec<BatchRow> = entries
                .get_untracked()
                .into_iter()
                .zip(predictions)
                .enumerate()
                .map(|(i, (e, p))| BatchRow::new(i + 1, e, p))
                .collect();
            let n = rows.len();
            view! {
                <div class="batch-results">
                    <p class="notice" data-testid="batch-progress">
                        {format!("{n} / {n} done in {:.1} s ({:.0} texts/s)", elapsed_ms / 1000.0, n as f64 / (elapsed_ms / 1000.0).max(1e-6))}
                    </p>
                    <Distribution labels=labels.clone() counts=distribution(&rows, &labels) />
                    <DailyChart labels=labels.clone() days=daily_shares(&rows, &labels) />
                    <ResultsTable labels rows />
                </div>
            }
            .into_any()
        }
    }
}

#[component]
fn Distribution(labels: Vec<String>, counts: Vec<usize>) -> impl IntoView {
    let total: usize = counts.iter().sum::<usize>().max(1);
    view! {
        <figure class="distribution" data-testid="batch-distribution">
            <figcaption>"Label distribution"</figcaption>
            <ul class="scores">
                {labels.into_iter().zip(counts).map(|(l, c)| {
                    let share = c as f64 / total as f64;
                    view! {
                        <li>
                            <span class="score-name">{l.clone()}</span>
                            <span class="bar"><span class=format!("fill label-{l}") style:width=format!("{:.2}%", share * 100.0)></span></span>
                            <span class="score-value" data-testid=format!("batch-count-{l}")>{format!("{c} ({:.1}%)", share * 100.0)}</span>
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
    if days.is_empty() {
        return view! { <p class="hint">"No date column (or no parsable dates): no trend chart."</p> }.into_any();
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
    let aria = format!("Daily share of labels from {first} to {last}");
    let mut rects = Vec::new();
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + i as f64 * step + (step - bar_w) / 2.0;
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
    let legend =
        labels.iter().map(|l| view! { <span class=format!("legend label-{l}")>{l.clone()}</span> }).collect_view();
    view! {
        <figure class="chart" data-testid="batch-chart">
            <figcaption>{format!("Daily share of each label ({n_days} days)")} " " {legend}</figcaption>
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

#[component]
fn ResultsTable(labels: Vec<String>, rows: Vec<BatchRow>) -> impl IntoView {
    let all = StoredValue::new(rows);
    let sort = RwSignal::new((SortKey::Index, false));
    let filter = RwSignal::new(String::new());
    let labels_sv = StoredValue::new(labels.clone());
    let visible = Memo::new(move |_| {
        let f = filter.get();
        let (key, desc) = sort.get();
        let mut rows: Vec<BatchRow> =
            all.with_value(|r| r.iter().filter(|r| f.is_empty() || r.label == f).cloned().collect());
        sort_rows(&mut rows, key, desc);
        rows
    });
    let header = move |name: String, key: SortKey| {
        let aria = move || match sort.get() {
            (k, false) if k == key => "ascending",
            (k, true) if k == key => "descending",
            _ => "none",
        };
        view! {
            <th aria-sort=aria>
                <button type="button" class="sort" on:click=move |_| sort.update(|s| *s = (key, s.0 == key && !s.1))>
                    {name}
                    {move || match aria() { "ascending" => " ▲", "descending" => " ▼", _ => "" }}
                </button>
            </th>
        }
    };
    let export = move |_| {
        let csv = all.with_value(|r| labels_sv.with_value(|l| to_csv(r, l)));
        if let Err(e) = download("sentiment-results.csv", &csv) {
            web_sys::console::error_1(&e.into());
        }
    };
    let total = all.with_value(|r| r.len());
    view! {
        <div class="table-tools">
            <label>"Show "
                <select data-testid="batch-filter" on:change=move |ev| filter.set(event_target_value(&ev))>
                    <option value="">"all labels"</option>
                    {labels.iter().map(|l| view! { <option value=l.clone()>{l.clone()}</option> }).collect_view()}
                </select>
            </label>
            <span class="hint">{move || {
                let n = visible.with(|v| v.len());
                if n > TABLE_LIMIT { format!("showing {TABLE_LIMIT} of {n} (the export has all {total})") } else { format!("{n} of {total} rows") }
            }}</span>
            <button type="button" data-testid="batch-export" on:click=export>"Export CSV"</button>
        </div>
        <div class="table-wrap">
            <table data-testid="batch-table">
                <thead>
                    <tr>
                        {header("#".into(), SortKey::Index)}
                        {header("text".into(), SortKey::Text)}
                        {header("date".into(), SortKey::Date)}
                        {header("label".into(), SortKey::Label)}
                        {labels.iter().enumerate().map(|(i, l)| header(l.clone(), SortKey::Score(i))).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {move || visible.with(|rows| rows.iter().take(TABLE_LIMIT).map(|r| view! {
                        <tr>
                            <td class="num">{r.index}</td>
                            <td class="text">{r.text.clone()}</td>
                            <td>{r.date.clone().unwrap_or_default()}</td>
                            <td><span class=format!("label label-{}", r.label)>{r.label.clone()}</span></td>
                            {r.scores.iter().map(|s| view! { <td class="num">{format!("{s:.3}")}</td> }).collect_view()}
                        </tr>
                    }).collect_view())}
                </tbody>
            </table>
        </div>
    }
}

/// Saves `content` as a file through a temporary object URL.
fn download(name: &str, content: &str) -> Result<(), String> {
    let err = |e: wasm_bindgen::JsValue| js_error_text(&e);
    let parts = js_sys::Array::of1(&content.into());
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("text/csv;charset=utf-8");
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
