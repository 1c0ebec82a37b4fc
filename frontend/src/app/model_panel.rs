//! What model is running: the manifest's version, source, quantization, size, metrics and
//! date, where it came from (network or cache), and the cache control.

use super::model::{Model, Status};
use leptos::prelude::*;

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// The status line: progress while loading, the error when it failed, announcements.
#[component]
pub fn StatusBar() -> impl IntoView {
    let model = expect_context::<Model>();
    view! {
        <div class="status" aria-live="polite">
            {move || match model.status.get() {
                Status::Starting => view! { <p>"Starting the model worker…"</p> }.into_any(),
                Status::Loading { loaded, total } => {
                    let pct = if total == 0 { 0.0 } else { loaded as f64 * 100.0 / total as f64 };
                    view! {
                        <div class="progress" data-testid="model-progress">
                            <progress max=total.max(1) value=loaded aria-label="Model download"></progress>
                            <span>{format!("Loading the model: {} of {} ({pct:.0}%)", megabytes(loaded), megabytes(total))}</span>
                        </div>
                    }
                    .into_any()
                }
                Status::Ready => ().into_any(),
                Status::Failed(msg) => view! { <p class="error" role="alert" data-testid="model-error">{msg}</p> }.into_any(),
            }}
            {move || model.notice.get().map(|n| view! {
                <p class="notice" data-testid="model-notice">{n}
                    <button type="button" class="link" aria-label="Dismiss" on:click=move |_| model.notice.set(None)>"×"</button>
                </p>
            })}
        </div>
    }
}

#[component]
pub fn ModelPanel() -> impl IntoView {
    let model = expect_context::<Model>();
    let url = RwSignal::new(model.bundle_url());
    let load_other = move |_| {
        // A reload with ?model= keeps the choice shareable as a link.
        let href = format!("?model={}", String::from(js_sys::encode_uri_component(&url.get_untracked())));
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_href(&href);
        }
    };
    view! {
        <section class="panel model-panel" aria-labelledby="model-title">
            <h2 id="model-title">"Model"</h2>
            {move || model.info.get().map(|info| {
                let m = info.manifest;
                let size: u64 = m.files.values().map(|f| f.size).sum();
                let source = match &m.source.revision {
                    Some(r) => format!("{} @ {}", m.source.repo_id, &r[..r.len().min(12)]),
                    None => m.source.repo_id.clone(),
                };
                let origin = if info.from_cache { "browser cache" } else { "downloaded" };
                view! {
                    <dl>
                        <dt>"Version"</dt><dd data-testid="model-version">{m.version.clone()}</dd>
                        <dt>"Source"</dt><dd>{source}</dd>
                        <dt>"Quantization"</dt><dd data-testid="model-quantization">{m.quantization.as_str()}</dd>
                        <dt>"Size"</dt><dd>{megabytes(size)}</dd>
                        <dt>"Labels"</dt><dd>{m.labels.join(", ")}</dd>
                        <dt>"Created"</dt><dd>{m.created_at.clone()}</dd>
                        <dt>"Loaded from"</dt><dd data-testid="model-origin">{format!("{origin} in {:.0} ms", info.load_ms)}</dd>
                        <dt>"Kernel"</dt><dd data-testid="model-kernel">{info.kernel.clone()}</dd>
                        <dt>"Worker memory"</dt><dd data-testid="model-memory">{megabytes(info.wasm_memory_bytes)}</dd>
                        {(!m.metrics.is_empty()).then(|| view! {
                            <dt>"Metrics"</dt>
                            <dd><ul class="metrics">{m.metrics.iter().map(|(k, v)| view! {
                                <li>{format!("{k}: {}", v.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| v.to_string()))}</li>
                            }).collect_view()}</ul></dd>
                        })}
                    </dl>
                    {info.cache_unavailable.map(|why| view! { <p class="hint">{format!("Not cached: {why}.")}</p> })}
                }
            })}
            <p class="status-word">"Status: "
                <span data-testid="model-status">{move || model.status.with(|s| s.word())}</span>
            </p>
            <details>
                <summary>"Settings"</summary>
                <label>"Bundle URL (a folder, or a Hub repo id like owner/name) "
                    <input type="url" prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                </label>
                <div class="actions">
                    <button type="button" on:click=load_other>"Load this model"</button>
                    <button type="button" data-testid="clear-cache" on:click=move |_| model.clear_cache()>"Clear cached model"</button>
                </div>
            </details>
        </section>
    }
}
