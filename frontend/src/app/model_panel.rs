//! What model is running: the manifest's version, source, quantization, size, metrics and
//! date, where it came from (network or cache), and the cache control.

use super::i18n::{tr, use_i18n, I18n};
use super::model::{describe, Model, Notice, Status};
use crate::i18n::Msg;
use leptos::prelude::*;

fn megabytes(i: I18n, bytes: u64) -> String {
    format!("{} MB", i.num(bytes as f64 / 1_000_000.0, 1))
}

fn notice_text(i: I18n, n: &Notice) -> String {
    match n {
        Notice::OfflineModel { version } => i.f(Msg::NoticeOfflineModel, &[("version", version)]),
        Notice::NewModel { version, was } => i.f(Msg::NoticeNewModel, &[("version", version), ("was", was)]),
        Notice::CacheCleared { removed } => i.f(Msg::NoticeCacheCleared, &[("n", &removed.to_string())]),
        Notice::NewApp { build, was } => i.f(Msg::NoticeNewApp, &[("build", build), ("was", was)]),
    }
}

/// The status line: progress while loading, the error when it failed, announcements.
#[component]
pub fn StatusBar() -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
    view! {
        <div class="status" aria-live="polite">
            {move || match model.status.get() {
                Status::Starting => view! { <p>{tr(Msg::StartingWorker)}</p> }.into_any(),
                Status::Loading { loaded, total } => {
                    let share = if total == 0 { 0.0 } else { loaded as f64 / total as f64 };
                    view! {
                        <div class="progress" data-testid="model-progress">
                            <progress max=total.max(1) value=loaded aria-label=tr(Msg::ModelDownload)></progress>
                            <span>{move || i.f(Msg::LoadingModel, &[
                                ("loaded", &megabytes(i, loaded)),
                                ("total", &megabytes(i, total)),
                                ("percent", &i.percent(share, 0)),
                            ])}</span>
                        </div>
                    }
                    .into_any()
                }
                Status::Ready => ().into_any(),
                Status::Failed(problem) => view! {
                    <p class="error" role="alert" data-testid="model-error">{move || describe(i, &problem)}</p>
                }
                .into_any(),
            }}
            {move || model.notice.get().map(|n| {
                let kind = match &n {
                    Notice::OfflineModel { .. } => "offline-model",
                    Notice::NewModel { .. } => "new-model",
                    Notice::CacheCleared { .. } => "cache-cleared",
                    Notice::NewApp { .. } => "new-app",
                };
                view! {
                    <p class="notice" data-testid="model-notice" data-kind=kind>{move || notice_text(i, &n)}
                        <button type="button" class="link" aria-label=tr(Msg::Dismiss) on:click=move |_| model.notice.set(None)>"×"</button>
                    </p>
                }
            })}
        </div>
    }
}

#[component]
pub fn ModelPanel() -> impl IntoView {
    let model = expect_context::<Model>();
    let i = use_i18n();
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
            <h2 id="model-title">{tr(Msg::ModelTitle)}</h2>
            {move || model.info.get().map(|info| {
                let m = info.manifest;
                let size: u64 = m.files.values().map(|f| f.size).sum();
                let name = crate::bundle_url::source_name(&m.source.repo_id);
                let source = match &m.source.revision {
                    Some(r) => format!("{name} @ {}", &r[..r.len().min(12)]),
                    None => name,
                };
                let (from_cache, load_ms, memory) = (info.from_cache, info.load_ms, info.wasm_memory_bytes);
                let labels = m.labels.clone();
                view! {
                    <dl>
                        <dt>{tr(Msg::ModelVersion)}</dt><dd data-testid="model-version" translate="no">{m.version.clone()}</dd>
                        <dt>{tr(Msg::ModelSource)}</dt><dd translate="no">{source}</dd>
                        <dt>{tr(Msg::ModelQuantization)}</dt><dd data-testid="model-quantization" translate="no">{m.quantization.as_str()}</dd>
                        <dt>{tr(Msg::ModelSize)}</dt><dd>{move || megabytes(i, size)}</dd>
                        <dt>{tr(Msg::ModelLabels)}</dt><dd>{move || labels.iter().map(|l| i.label(l)).collect::<Vec<_>>().join(", ")}</dd>
                        <dt>{tr(Msg::ModelCreated)}</dt><dd translate="no">{m.created_at.clone()}</dd>
                        <dt>{tr(Msg::ModelLoadedFrom)}</dt>
                        <dd data-testid="model-origin" data-origin=if from_cache { "cache" } else { "network" }>{move || i.f(
                            if from_cache { Msg::LoadedFromCache } else { Msg::LoadedFromNetwork },
                            &[("ms", &i.num(load_ms, 0))],
                        )}</dd>
                        <dt>{tr(Msg::ModelKernel)}</dt><dd data-testid="model-kernel" translate="no">{info.kernel.clone()}</dd>
                        <dt>{tr(Msg::ModelMemory)}</dt><dd data-testid="model-memory">{move || megabytes(i, memory)}</dd>
                        {(!m.metrics.is_empty()).then(|| view! {
                            <dt>{tr(Msg::ModelMetrics)}</dt>
                            <dd><ul class="metrics" translate="no">{m.metrics.iter().map(|(k, v)| {
                                let (k, v) = (k.clone(), v.clone());
                                view! {
                                    <li>{move || format!("{k}: {}", v.as_f64().map(|x| i.num(x, 4)).unwrap_or_else(|| v.to_string()))}</li>
                                }
                            }).collect_view()}</ul></dd>
                        })}
                    </dl>
                    {info.cache_unavailable.map(|why| view! {
                        <p class="hint">{move || i.f(Msg::NotCached, &[("detail", &why)])}</p>
                    })}
                }
            })}
            <p class="status-word">{tr(Msg::StatusLabel)}" "
                <span data-testid="model-status" data-status=move || model.status.with(|s| s.word())>
                    {move || i.t(match model.status.with(|s| s.word()) {
                        "ready" => Msg::StatusReady,
                        "error" => Msg::StatusError,
                        _ => Msg::StatusLoading,
                    })}
                </span>
            </p>
            <details>
                <summary>{tr(Msg::Settings)}</summary>
                <label>{tr(Msg::BundleUrlLabel)}" "
                    <input type="url" prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                </label>
                <div class="actions">
                    <button type="button" on:click=load_other>{tr(Msg::LoadThisModel)}</button>
                    <button type="button" data-testid="clear-cache" on:click=move |_| model.clear_cache()>{tr(Msg::ClearCachedModel)}</button>
                </div>
            </details>
        </section>
    }
}
