//! The monitor view (`#monitor`): the model's health for the people who run the Space, read
//! only from what is public — the server's `GET /api/feedback/stats`, and the model store's
//! `registry.json` and nightly reports (`reports/index.json`, `reports/<stamp>.json`). The
//! figures are derived in [`crate::monitor`]; this module fetches and draws them.

use super::config::Config;
use super::i18n::{tr, use_i18n, I18n};
use crate::i18n::Msg;
use crate::monitor::{
    daily_from_cumulative, days_to_query, drift, gate_rows, mix, psi, store_url, versions_with_feedback, Agreement,
    Drift, REPORTS_SHOWN,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;
use shared::feedback::FeedbackStats;
use shared::model_store::{
    ChangeKind, GuardAgreement, IndexEntry, Outcome, Registry, Report, VersionEntry, DEFAULT_PSI_ALERT,
    DEFAULT_TOLERANCE, REGISTRY_FILE, REPORT_INDEX_FILE,
};
use std::collections::{BTreeMap, BTreeSet};

/// Why a file could not be read; every text names the URL.
#[derive(Debug, Clone, PartialEq)]
enum Fail {
    NotFound(String),
    Status(String, u16, String),
    Unreachable(String, String),
    Invalid(String, String),
}

impl Fail {
    fn text(&self, i: I18n) -> String {
        match self {
            Fail::NotFound(url) => i.f(Msg::MonitorNotFound, &[("url", url)]),
            Fail::Status(url, s, d) => {
                i.f(Msg::MonitorHttpStatus, &[("url", url), ("status", &s.to_string()), ("detail", d)])
            }
            Fail::Unreachable(url, d) => i.f(Msg::MonitorUnreachable, &[("url", url), ("detail", d)]),
            Fail::Invalid(url, d) => i.f(Msg::MonitorInvalid, &[("url", url), ("detail", d)]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Load<T> {
    Loading,
    Failed(Fail),
    Ready(T),
}

async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, Fail> {
    let resp = gloo_net::http::Request::get(url)
        .cache(web_sys::RequestCache::NoCache)
        .send()
        .await
        .map_err(|e| Fail::Unreachable(url.to_string(), e.to_string()))?;
    match resp.status() {
        404 => return Err(Fail::NotFound(url.to_string())),
        s if !resp.ok() => {
            let body: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
            return Err(Fail::Status(url.to_string(), s, body));
        }
        _ => {}
    }
    let text = resp.text().await.map_err(|e| Fail::Unreachable(url.to_string(), e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Fail::Invalid(url.to_string(), e.to_string()))
}

/// One model version's feedback: all of it, and per day.
#[derive(Debug, Clone, PartialEq)]
struct VersionFeedback {
    version: String,
    total: Agreement,
    by_label: BTreeMap<String, u64>,
    daily: Vec<(String, Agreement)>,
}

#[derive(Debug, Clone, PartialEq)]
struct FeedbackView {
    all: FeedbackStats,
    versions: Vec<VersionFeedback>,
}

fn stats_url(api: &str, version: Option<&str>, since: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(v) = version {
        q.push(format!("model_version={}", String::from(js_sys::encode_uri_component(v))));
    }
    if let Some(s) = since {
        q.push(format!("since={s}"));
    }
    let base = format!("{api}/api/feedback/stats");
    if q.is_empty() {
        base
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

/// The stats answer per version and per day: the API filters by version and `since`, so each
/// day is the difference of two `since` answers (`monitor::daily_from_cumulative`).
async fn load_feedback(api: String) -> Result<FeedbackView, Fail> {
    let all: FeedbackStats = get_json(&stats_url(&api, None, None)).await?;
    let mut versions = Vec::new();
    for v in versions_with_feedback(&all) {
        let whole: FeedbackStats = get_json(&stats_url(&api, Some(&v), None)).await?;
        let mut cumulative = Vec::new();
        for day in days_to_query(&whole) {
            let since: FeedbackStats = get_json(&stats_url(&api, Some(&v), Some(&day))).await?;
            cumulative.push((day, Agreement::of(&since)));
        }
        versions.push(VersionFeedback {
            version: v,
            total: Agreement::of(&whole),
            by_label: whole.by_label.clone(),
            daily: daily_from_cumulative(&cumulative),
        });
    }
    // Oldest first, so colours and rows follow the model's history.
    versions.sort_by(|a, b| a.daily.first().map(|d| &d.0).cmp(&b.daily.first().map(|d| &d.0)));
    Ok(FeedbackView { all, versions })
}

#[derive(Debug, Clone, PartialEq)]
struct Reports {
    /// Newest first, with each report or why it could not be read.
    shown: Vec<(IndexEntry, Result<Report, Fail>)>,
}

async fn load_reports(store: String) -> Result<Reports, Fail> {
    let index: Vec<IndexEntry> = match get_json(&store_url(&store, REPORT_INDEX_FILE)).await {
        Ok(i) => i,
        Err(Fail::NotFound(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut shown = Vec::new();
    for e in index.into_iter().take(REPORTS_SHOWN) {
        let r = get_json(&store_url(&store, &e.file)).await;
        shown.push((e, r));
    }
    Ok(Reports { shown })
}

#[derive(Clone, Copy)]
struct Data {
    feedback: RwSignal<Load<FeedbackView>>,
    registry: RwSignal<Load<Registry>>,
    reports: RwSignal<Load<Reports>>,
}

impl Data {
    fn load(self, api: String, store: String) {
        self.feedback.set(Load::Loading);
        self.registry.set(Load::Loading);
        self.reports.set(Load::Loading);
        let fb = self.feedback;
        spawn_local(async move {
            fb.set(match load_feedback(api).await {
                Ok(v) => Load::Ready(v),
                Err(e) => Load::Failed(e),
            });
        });
        let (reg, rep) = (self.registry, self.reports);
        spawn_local(async move {
            reg.set(match get_json::<Registry>(&store_url(&store, REGISTRY_FILE)).await {
                Ok(r) => Load::Ready(r),
                Err(e) => Load::Failed(e),
            });
            rep.set(match load_reports(store).await {
                Ok(r) => Load::Ready(r),
                Err(e) => Load::Failed(e),
            });
        });
    }
}

fn when(ts: &str) -> String {
    // RFC 3339 UTC → "2026-12-04 02:00 UTC"; anything else as it is.
    if ts.len() >= 16 && ts.as_bytes().get(10) == Some(&b'T') {
        format!("{} {} UTC", &ts[..10], &ts[11..16])
    } else {
        ts.to_string()
    }
}

fn pct(i: I18n, x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |x| i.percent(x, 1))
}

fn pp(i: I18n, x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |x| format!("{}{} pp", if x >= 0.0 { "+" } else { "" }, i.num(x * 100.0, 2)))
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(String::new, |x| format!("{x}"))
}

fn loading_or_error<T: Clone + Send + Sync + 'static>(
    i: I18n,
    load: &Load<T>,
    hint: Msg,
    testid: &'static str,
) -> Option<AnyView> {
    match load {
        Load::Loading => Some(
            view! { <p class="hint" data-testid=testid data-state="loading">{tr(Msg::MonitorLoading)}</p> }.into_any(),
        ),
        // A model location without registry.json is a single bundle (as `scripts/run.sh`
        // serves one), not a broken store: say so calmly, with how to point at a store.
        Load::Failed(Fail::NotFound(url)) if hint == Msg::MonitorStoreHint => {
            let url = url.clone();
            Some(
                view! {
                    <p class="notice" data-testid=testid data-state="absent">
                        {move || i.f(Msg::MonitorNoStore, &[("url", &url)])}
                    </p>
                }
                .into_any(),
            )
        }
        Load::Failed(f) => {
            let f = f.clone();
            Some(
                view! {
                    <div class="error" role="alert" data-testid=testid data-state="error">
                        <p>{move || f.text(i)}</p>
                        <p>{tr(hint)}</p>
                    </div>
                }
                .into_any(),
            )
        }
        Load::Ready(_) => None,
    }
}

/// The baseline the monitor holds the champion to and its tolerance, with where it came from.
fn baseline_for(registry: Option<&Registry>, reports: Option<&Reports>) -> Option<(String, f64, f64, Msg)> {
    let champion = registry.and_then(|r| r.champion.clone());
    let monitors: Vec<_> = reports
        .map(|r| r.shown.iter().filter_map(|(_, rep)| rep.as_ref().ok()?.monitor.clone()).collect())
        .unwrap_or_default();
    let tolerance = monitors.first().map_or(DEFAULT_TOLERANCE, |m| m.tolerance);
    if let Some(entry) = registry.and_then(|r| r.champion_entry()) {
        if let Some(b) = entry.baseline() {
            return Some((entry.version.clone(), b, tolerance, Msg::MonitorSourceRegistry));
        }
    }
    let m = monitors.iter().find(|m| Some(&m.model_version) == champion.as_ref()).or_else(|| monitors.first())?;
    Some((m.model_version.clone(), m.baseline, tolerance, Msg::MonitorSourceReport))
}

#[component]
pub fn MonitorView() -> impl IntoView {
    let i = use_i18n();
    let config = Config::from_page();
    let api_shown =
        if config.api_base.is_empty() { "/api/feedback/stats".to_string() } else { config.api_base.clone() };
    let data = Data {
        feedback: RwSignal::new(Load::Loading),
        registry: RwSignal::new(Load::Loading),
        reports: RwSignal::new(Load::Loading),
    };
    let (api, store) = (config.api_base.clone(), config.bundle_url.clone());
    data.load(api.clone(), store.clone());
    let store_shown = store.clone();
    view! {
        <section class="panel monitor" data-testid="monitor" aria-labelledby="monitor-title">
            <div class="monitor-head">
                <h2 id="monitor-title">{tr(Msg::MonitorTitle)}</h2>
                <button type="button" data-testid="monitor-refresh" on:click=move |_| data.load(api.clone(), store.clone())>
                    {tr(Msg::MonitorRefresh)}
                </button>
            </div>
            <p class="hint">{tr(Msg::MonitorIntro)}</p>
            <p class="hint sources">{move || i.f(Msg::MonitorSources, &[("api", &api_shown), ("store", &store_shown)])}</p>
        </section>
        <AgreementPanel data />
        <VolumePanel data />
        <MixPanel data />
        <RegistryPanel data />
        <ReportsPanel data store=config.bundle_url.clone() />
    }
}

const SERIES: usize = 6;

#[component]
fn AgreementPanel(data: Data) -> impl IntoView {
    let i = use_i18n();
    view! {
        <section class="panel" data-testid="monitor-agreement">
            <h2>{tr(Msg::MonitorAgreementTitle)}</h2>
            <p class="hint">{tr(Msg::MonitorAgreementHelp)}</p>
            {move || {
                let fb = data.feedback.get();
                if let Some(v) = loading_or_error(i, &fb, Msg::MonitorApiHint, "agreement-state") {
                    return v;
                }
                let Load::Ready(fb) = fb else { unreachable!() };
                if fb.versions.is_empty() {
                    return view! { <p class="hint" data-testid="agreement-state" data-state="empty">{tr(Msg::MonitorNoFeedback)}</p> }.into_any();
                }
                let registry = match data.registry.get() { Load::Ready(r) => Some(r), _ => None };
                let reports = match data.reports.get() { Load::Ready(r) => Some(r), _ => None };
                let baseline = baseline_for(registry.as_ref(), reports.as_ref());
                let champion = registry.as_ref().and_then(|r| r.champion.clone());
                view! {
                    <AgreementChart fb=fb.clone() baseline=baseline.clone().map(|b| (b.1, b.2)) />
                    <p class="hint" data-testid="agreement-baseline"
                        data-baseline=baseline.as_ref().map(|b| b.1.to_string())
                        data-tolerance=baseline.as_ref().map(|b| b.2.to_string())>
                        {baseline.clone().map_or_else(
                            || i.t(Msg::MonitorNoBaseline).to_string(),
                            |(v, b, t, src)| i.f(Msg::MonitorBaselineOf, &[
                                ("baseline", &i.percent(b, 1)), ("version", &v), ("source", i.t(src)),
                                ("threshold", &i.percent(b - t, 1)), ("tolerance", &i.percent(t, 1)),
                            ]),
                        )}
                    </p>
                    <div class="table-wrap short">
                        <table>
                            <thead><tr>
                                <th>{tr(Msg::MonitorColVersion)}</th>
                                <th>{tr(Msg::MonitorColDays)}</th>
                                <th class="num">{tr(Msg::MonitorColFeedback)}</th>
                                <th class="num">{tr(Msg::MonitorColAgreement)}</th>
                                <th class="num">{tr(Msg::MonitorColInterval)}</th>
                                <th class="num">{tr(Msg::MonitorColBaseline)}</th>
                            </tr></thead>
                            <tbody>
                                {fb.versions.iter().enumerate().map(|(k, v)| {
                                    let ci = v.total.ci95();
                                    let base = registry.as_ref().and_then(|r| r.get(&v.version)).and_then(|e| e.baseline());
                                    let is_champion = champion.as_deref() == Some(v.version.as_str());
                                    let days = match (v.daily.first(), v.daily.last()) {
                                        (Some(a), Some(b)) if a.0 != b.0 => format!("{} – {}", a.0, b.0),
                                        (Some(a), _) => a.0.clone(),
                                        _ => String::new(),
                                    };
                                    view! {
                                        <tr data-testid="agreement-row" data-version=v.version.clone() data-n=v.total.n
                                            data-agree=v.total.agree data-agreement=opt(v.total.share())
                                            data-ci-low=opt(ci.map(|c| c[0])) data-ci-high=opt(ci.map(|c| c[1]))>
                                            <td><span class=format!("swatch series-{}", k % SERIES)></span>{v.version.clone()}
                                                {is_champion.then(|| view! { " " <span class="tag">{tr(Msg::MonitorChampionBadge)}</span> })}</td>
                                            <td class="date">{days}</td>
                                            <td class="num">{v.total.n}</td>
                                            <td class="num">{pct(i, v.total.share())}</td>
                                            <td class="num">{ci.map_or_else(|| "—".into(), |c| format!("{} – {}", i.percent(c[0], 1), i.percent(c[1], 1)))}</td>
                                            <td class="num">{pct(i, base)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn AgreementChart(fb: FeedbackView, baseline: Option<(f64, f64)>) -> impl IntoView {
    let i = use_i18n();
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 8.0;
    const BOTTOM: f64 = 24.0;
    let days: Vec<String> = fb
        .versions
        .iter()
        .flat_map(|v| v.daily.iter().map(|d| d.0.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lows = fb.versions.iter().flat_map(|v| v.daily.iter().filter_map(|d| d.1.ci95().map(|c| c[0])));
    let floor = lows.chain(baseline.map(|(b, t)| b - t)).fold(1.0f64, f64::min);
    let ymin = ((floor - 0.05) * 10.0).floor().max(0.0) / 10.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let step = plot_w / days.len().max(1) as f64;
    let y = move |v: f64| TOP + (1.0 - (v - ymin) / (1.0 - ymin)) * plot_h;
    let nv = fb.versions.len() as f64;
    let x = |day: &str, k: usize| {
        let d = days.iter().position(|x| x == day).unwrap_or(0) as f64;
        LEFT + (d + 0.5) * step + (k as f64 - (nv - 1.0) / 2.0) * 5.0
    };
    let mut ticks = Vec::new();
    let mut t = ymin;
    while t <= 1.0 + 1e-9 {
        ticks.push(view! {
            <line x1=LEFT y1=y(t) x2=W - RIGHT y2=y(t) class="grid" />
            <text x=LEFT - 4.0 y=y(t) + 3.0 class="tick end">{format!("{:.0}%", t * 100.0)}</text>
        });
        t += 0.1;
    }
    let mut series = Vec::new();
    for (k, v) in fb.versions.iter().enumerate() {
        // (x, agreement, band, the day's figures) per day with feedback.
        let pts: Vec<_> = v.daily.iter().filter_map(|d| Some((x(&d.0, k), d.1.share()?, d.1.ci95()?, d))).collect();
        let band = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", p.0, y(p.2[1])))
            .chain(pts.iter().rev().map(|p| format!("{:.1},{:.1}", p.0, y(p.2[0]))))
            .collect::<Vec<_>>()
            .join(" ");
        let line = pts.iter().map(|p| format!("{:.1},{:.1}", p.0, y(p.1))).collect::<Vec<_>>().join(" ");
        let class = format!("series-{}", k % SERIES);
        let marks = pts
            .iter()
            .map(|p| {
                let (day, a) = p.3;
                view! {
                    <line x1=p.0 y1=y(p.2[0]) x2=p.0 y2=y(p.2[1]) class="whisker" />
                    <circle cx=p.0 cy=y(p.1) r="3.5" data-testid="agreement-point" data-version=v.version.clone()
                        data-day=day.clone() data-n=a.n data-agree=a.agree data-agreement=p.1
                        data-ci-low=p.2[0] data-ci-high=p.2[1]>
                        <title>{format!("{} {}: {} ({}–{}), n = {}", v.version, day, i.percent(p.1, 1), i.percent(p.2[0], 1), i.percent(p.2[1], 1), a.n)}</title>
                    </circle>
                }
            })
            .collect_view();
        series.push(view! {
            <g class=class>
                <polygon points=band class="band" />
                <polyline points=line class="line" />
                {marks}
            </g>
        });
    }
    let rules = baseline.map(|(b, t)| {
        view! {
            <line x1=LEFT y1=y(b) x2=W - RIGHT y2=y(b) class="baseline" data-testid="baseline-line" data-value=b />
            <text x=W - RIGHT - 2.0 y=y(b) - 3.0 class="tick end rule-label">{move || i.f(Msg::MonitorBaseline, &[("value", &i.percent(b, 1))])}</text>
            <line x1=LEFT y1=y(b - t) x2=W - RIGHT y2=y(b - t) class="threshold" data-testid="threshold-line" data-value=b - t />
            <text x=W - RIGHT - 2.0 y=y(b - t) + 11.0 class="tick end rule-label">{move || i.f(Msg::MonitorThreshold, &[("value", &i.percent(b - t, 1))])}</text>
        }
    });
    let (first, last) = (days.first().cloned().unwrap_or_default(), days.last().cloned().unwrap_or_default());
    let aria = {
        let (first, last) = (first.clone(), last.clone());
        move || i.f(Msg::MonitorAgreementAria, &[("first", &first), ("last", &last)])
    };
    let day_ticks = days
        .iter()
        .enumerate()
        .filter(|(n, _)| days.len() <= 10 || n % days.len().div_ceil(8) == 0)
        .map(|(n, d)| {
            view! { <text x=LEFT + (n as f64 + 0.5) * step y=H - 6.0 class="tick mid">{d[5..].to_string()}</text> }
        })
        .collect_view();
    let legend = fb
        .versions
        .iter()
        .enumerate()
        .map(|(k, v)| view! { <span class="legend-item"><span class=format!("swatch series-{}", k % SERIES)></span>{v.version.clone()}</span> })
        .collect_view();
    view! {
        <figure class="chart agreement-chart" data-testid="agreement-chart">
            <figcaption class="legend-line">{legend}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=aria>
                {ticks}
                <line x1=LEFT y1=TOP x2=LEFT y2=TOP + plot_h class="axis" />
                {rules}
                {series}
                {day_ticks}
            </svg>
        </figure>
    }
}

#[component]
fn VolumePanel(data: Data) -> impl IntoView {
    let i = use_i18n();
    view! {
        <section class="panel" data-testid="monitor-volume">
            <h2>{tr(Msg::MonitorVolumeTitle)}</h2>
            {move || {
                let fb = data.feedback.get();
                if let Some(v) = loading_or_error(i, &fb, Msg::MonitorApiHint, "volume-state") {
                    return v;
                }
                let Load::Ready(fb) = fb else { unreachable!() };
                if fb.all.by_day.is_empty() {
                    return view! { <p class="hint">{tr(Msg::MonitorNoFeedback)}</p> }.into_any();
                }
                let labels: Vec<String> = fb.all.by_label.keys().cloned().collect();
                let days: Vec<(&String, &BTreeMap<String, u64>)> = fb.all.by_day.iter().collect();
                let days = &days[days.len().saturating_sub(crate::monitor::DAYS_SHOWN)..];
                let max = days.iter().map(|(_, c)| c.values().sum::<u64>()).max().unwrap_or(1).max(1);
                const W: f64 = 640.0;
                const H: f64 = 200.0;
                const LEFT: f64 = 40.0;
                const BOTTOM: f64 = 24.0;
                let plot_h = H - BOTTOM - 8.0;
                let step = (W - LEFT - 4.0) / days.len() as f64;
                let bar_w = (step * 0.7).max(1.0);
                let mut rects = Vec::new();
                for (n, (day, counts)) in days.iter().enumerate() {
                    let x = LEFT + n as f64 * step + (step - bar_w) / 2.0;
                    let mut top = 8.0 + plot_h;
                    for l in &labels {
                        let c = counts.get(l).copied().unwrap_or(0);
                        let h = c as f64 / max as f64 * plot_h;
                        top -= h;
                        rects.push(view! {
                            <rect x=x y=top width=bar_w height=h class=format!("label-{l}")
                                data-testid="volume-bar" data-day=(*day).clone() data-label=l.clone() data-count=c>
                                <title>{format!("{day} {}: {c}", i.label(l))}</title>
                            </rect>
                        });
                    }
                }
                let ticks = days.iter().enumerate()
                    .filter(|(n, _)| days.len() <= 10 || n % days.len().div_ceil(8) == 0)
                    .map(|(n, (d, _))| view! { <text x=LEFT + (n as f64 + 0.5) * step y=H - 6.0 class="tick mid">{d[5..].to_string()}</text> })
                    .collect_view();
                let first = days.first().map(|d| d.0.clone()).unwrap_or_default();
                let last = days.last().map(|d| d.0.clone()).unwrap_or_default();
                let aria = i.f(Msg::MonitorVolumeAria, &[("first", &first), ("last", &last), ("max", &max.to_string())]);
                let legend = labels.iter().map(|l| view! { <span class=format!("legend label-{l}")>{i.label(l)}</span> }).collect_view();
                view! {
                    <figure class="chart">
                        <figcaption>{legend}</figcaption>
                        <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=aria>
                            <line x1=LEFT y1="8" x2=LEFT y2=8.0 + plot_h class="axis" />
                            <line x1=LEFT y1="8" x2=W - 4.0 y2="8" class="grid" />
                            <text x=LEFT - 4.0 y="14" class="tick end">{max}</text>
                            <text x=LEFT - 4.0 y=8.0 + plot_h class="tick end">"0"</text>
                            {rects}
                            {ticks}
                        </svg>
                    </figure>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn MixPanel(data: Data) -> impl IntoView {
    let i = use_i18n();
    view! {
        <section class="panel" data-testid="monitor-mix">
            <h2>{tr(Msg::MonitorMixTitle)}</h2>
            {move || {
                let fb = data.feedback.get();
                if let Some(v) = loading_or_error(i, &fb, Msg::MonitorApiHint, "mix-state") {
                    return v;
                }
                let Load::Ready(fb) = fb else { unreachable!() };
                let registry = match data.registry.get() { Load::Ready(r) => Some(r), _ => None };
                let reports = match data.reports.get() { Load::Ready(r) => Some(r), _ => None };
                // The champion's feedback (what the monitor measures); without a registry, the
                // version with the newest feedback.
                let champion = registry.as_ref().and_then(|r| r.champion.clone())
                    .or_else(|| fb.versions.last().map(|v| v.version.clone()));
                let Some(version) = champion else {
                    return view! { <p class="hint">{tr(Msg::MonitorNoFeedback)}</p> }.into_any();
                };
                let counts = fb.versions.iter().find(|v| v.version == version).map(|v| v.by_label.clone()).unwrap_or_default();
                let n: u64 = counts.values().sum();
                if n == 0 {
                    return view! { <p class="hint">{tr(Msg::MonitorNoFeedback)}</p> }.into_any();
                }
                let monitors: Vec<_> = reports.iter().flat_map(|r| r.shown.iter().filter_map(|(_, rep)| rep.as_ref().ok()?.monitor.clone())).collect();
                let reference = registry.as_ref().and_then(|r| r.get(&version)).and_then(|e| e.label_mix())
                    .or_else(|| monitors.iter().find(|m| m.model_version == version).and_then(|m| m.reference_mix.clone()));
                let alert = monitors.first().map(|m| m.psi_threshold).filter(|a| *a > 0.0).unwrap_or(DEFAULT_PSI_ALERT);
                let feedback_mix = mix(&counts);
                let labels: BTreeSet<String> = feedback_mix.keys().chain(reference.iter().flat_map(|r| r.keys())).cloned().collect();
                let value = reference.as_ref().map(|r| psi(&feedback_mix, r));
                let rows = labels.iter().map(|l| {
                    let p = feedback_mix.get(l).copied().unwrap_or(0.0);
                    let q = reference.as_ref().map(|r| r.get(l).copied().unwrap_or(0.0));
                    view! {
                        <li data-testid="mix-row" data-label=l.clone() data-feedback=p data-training=opt(q)>
                            <span class=format!("label label-{l}")>{i.label(l)}</span>
                            <span class="mix-bars">
                                <span class="bar"><span class=format!("fill label-{l}") style=format!("width: {:.1}%", p * 100.0)></span></span>
                                {q.map(|q| view! { <span class="bar training"><span class=format!("fill label-{l}") style=format!("width: {:.1}%", q * 100.0)></span></span> })}
                            </span>
                            <span class="score-value">{i.percent(p, 1)}{q.map(|q| format!(" / {}", i.percent(q, 1)))}</span>
                        </li>
                    }
                }).collect_view();
                let sentence = match value {
                    Some(v) => {
                        let msg = match drift(v, alert) {
                            Drift::None => Msg::MonitorDriftNone,
                            Drift::Moderate => Msg::MonitorDriftModerate,
                            Drift::Alert => Msg::MonitorDriftAlert,
                        };
                        i.f(msg, &[("psi", &i.num(v, 3)), ("alert", &i.num(alert, 2))])
                    }
                    None => i.f(Msg::MonitorMixNoReference, &[("version", &version)]),
                };
                let level = value.map(|v| match drift(v, alert) { Drift::None => "none", Drift::Moderate => "moderate", Drift::Alert => "alert" });
                view! {
                    <p class="mix-legend">
                        <span class="key">{i.f(Msg::MonitorMixFeedback, &[("version", &version), ("n", &n.to_string())])}</span>
                        {reference.is_some().then(|| view! { <span class="key training">{i.f(Msg::MonitorMixTraining, &[("version", &version)])}</span> })}
                    </p>
                    <ul class="scores mix">{rows}</ul>
                    <p data-testid="mix-drift" data-psi=value.map(|v| v.to_string()) data-level=level class=format!("drift drift-{}", level.unwrap_or("unknown"))>{sentence}</p>
                }.into_any()
            }}
        </section>
    }
}

fn kind_text(kind: &ChangeKind) -> Msg {
    match kind {
        ChangeKind::Promoted => Msg::MonitorKindPromoted,
        ChangeKind::Rollback => Msg::MonitorKindRollback,
        ChangeKind::Published | ChangeKind::Other(_) => Msg::MonitorKindPublished,
    }
}

fn outcome_text(outcome: &Outcome) -> Option<Msg> {
    Some(match outcome {
        Outcome::Hold => Msg::MonitorOutcomeHold,
        Outcome::Promoted => Msg::MonitorOutcomePromoted,
        Outcome::Rejected => Msg::MonitorOutcomeRejected,
        Outcome::RolledBack => Msg::MonitorOutcomeRolledBack,
        Outcome::Failed => Msg::MonitorOutcomeFailed,
        Outcome::Other(_) => return None,
    })
}

#[component]
fn RegistryPanel(data: Data) -> impl IntoView {
    let i = use_i18n();
    view! {
        <section class="panel" data-testid="monitor-registry">
            <h2>{tr(Msg::MonitorRegistryTitle)}</h2>
            {move || {
                let reg = data.registry.get();
                if let Some(v) = loading_or_error(i, &reg, Msg::MonitorStoreHint, "registry-state") {
                    return v;
                }
                let Load::Ready(reg) = reg else { unreachable!() };
                if reg.versions.is_empty() {
                    return view! { <p class="hint">{tr(Msg::MonitorNoRegistry)}</p> }.into_any();
                }
                let gate = match data.reports.get() {
                    Load::Ready(r) => r.shown.iter().find_map(|(_, rep)| rep.as_ref().ok().map(|r| r.config.gate.clone())),
                    _ => None,
                }.unwrap_or_default();
                let (gm, hm) = (gate.gold_metric.clone(), gate.holdout_metric.clone());
                let figure = |e: &VersionEntry, set: &str, metric: &str| {
                    e.metrics.get(set).and_then(|f| f.get(metric)).and_then(|v| v.as_f64())
                };
                let rows = reg.versions.iter().rev().map(|e| {
                    let champion = reg.champion.as_deref() == Some(e.version.as_str());
                    let (gold, holdout) = (figure(e, "gold", &gm), figure(e, "feedback_holdout", &hm));
                    view! {
                        <tr data-testid="registry-version" data-version=e.version.clone() data-champion=champion.to_string()
                            data-gold=opt(gold) data-holdout=opt(holdout) data-baseline=opt(e.baseline())
                            class:champion=champion>
                            <td>{e.version.clone()}{champion.then(|| view! { " " <span class="tag">{tr(Msg::MonitorChampionBadge)}</span> })}</td>
                            <td>{e.parent_version.clone().unwrap_or_else(|| "—".into())}</td>
                            <td class="date">{when(&e.published_at)}</td>
                            <td>{e.quantization.clone()}</td>
                            <td class="num">{pct(i, gold)}</td>
                            <td class="num">{pct(i, holdout)}</td>
                            <td class="num">{pct(i, e.baseline())}</td>
                        </tr>
                    }
                }).collect_view();
                let changes = reg.history.iter().rev().map(|c| {
                    view! {
                        <li data-testid="champion-change" data-kind=c.kind.as_str().to_string() data-from=c.from.clone().unwrap_or_default()
                            data-to=c.to.clone() data-at=c.at.clone()>
                            <span class="date">{when(&c.at)}</span> " "
                            <span class=format!("tag kind-{}", c.kind.as_str())>{tr(kind_text(&c.kind))}</span> " "
                            <strong>{c.from.clone().map(|f| format!("{f} → ")).unwrap_or_default()}{c.to.clone()}</strong>
                            <span class="reason">{c.reason.clone()}</span>
                        </li>
                    }
                }).collect_view();
                view! {
                    <div class="table-wrap short">
                        <table>
                            <thead><tr>
                                <th>{tr(Msg::MonitorColVersion)}</th>
                                <th>{tr(Msg::MonitorColParent)}</th>
                                <th>{tr(Msg::MonitorColPublished)}</th>
                                <th>{tr(Msg::MonitorColQuant)}</th>
                                <th class="num">{move || i.f(Msg::MonitorColGold, &[("metric", &gm.replace('_', " "))])}</th>
                                <th class="num">{move || i.f(Msg::MonitorColHoldout, &[("metric", &hm.replace('_', " "))])}</th>
                                <th class="num">{tr(Msg::MonitorColBaseline)}</th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                    <h3>{tr(Msg::MonitorHistoryTitle)}</h3>
                    <ol class="history" data-testid="champion-history">{changes}</ol>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn ReportsPanel(data: Data, store: String) -> impl IntoView {
    let i = use_i18n();
    view! {
        <section class="panel" data-testid="monitor-reports">
            <h2>{tr(Msg::MonitorReportsTitle)}</h2>
            {move || {
                let reports = data.reports.get();
                if let Some(v) = loading_or_error(i, &reports, Msg::MonitorStoreHint, "reports-state") {
                    return v;
                }
                let Load::Ready(reports) = reports else { unreachable!() };
                if reports.shown.is_empty() {
                    return view! { <p class="hint" data-testid="reports-state" data-state="empty">{tr(Msg::MonitorNoReports)}</p> }.into_any();
                }
                let store = store.clone();
                reports.shown.into_iter().enumerate().map(|(n, (entry, report))| {
                    let outcome = outcome_text(&entry.outcome).map_or_else(|| entry.outcome.as_str().to_string(), |m| i.t(m).to_string());
                    let title = i.f(Msg::MonitorReportOf, &[("when", &when(&entry.started_at)), ("outcome", &outcome)]);
                    let href = store_url(&store, &entry.file);
                    view! {
                        <details class="report" open=n == 0 data-testid="report" data-file=entry.file.clone() data-outcome=entry.outcome.as_str().to_string()>
                            <summary><span class=format!("tag outcome-{}", entry.outcome.as_str())>{title}</span> " " <span class="reason">{entry.reason.clone()}</span></summary>
                            {match report {
                                Ok(r) => view! { <ReportBody entry=entry.clone() report=r /> }.into_any(),
                                Err(f) => view! { <p class="error" role="alert">{f.text(i)}</p> }.into_any(),
                            }}
                            <p><a href=href target="_blank" rel="noopener">{tr(Msg::MonitorOpenReport)}</a></p>
                        </details>
                    }
                }).collect_view().into_any()
            }}
        </section>
    }
}

#[component]
fn ReportBody(entry: IndexEntry, report: Report) -> impl IntoView {
    let i = use_i18n();
    let rows = gate_rows(&report);
    let gate = (!rows.is_empty()).then(|| {
        let champion = entry.champion.clone().unwrap_or_default();
        let challenger = entry.challenger.clone().unwrap_or_default();
        let promote = report.gate.as_ref().map(|g| g.promote);
        let body = rows
            .into_iter()
            .map(|r| {
                let set = if r.set == "gold" { Msg::MonitorSetGold } else { Msg::MonitorSetHoldout };
                let rule = match (r.set, r.limit) {
                    ("gold", Some(l)) => i.f(Msg::MonitorRuleLoss, &[("value", &pp(i, Some(l)).replace('+', ""))]),
                    (_, Some(l)) => i.f(Msg::MonitorRuleGain, &[("value", &pp(i, Some(l)))]),
                    _ => String::new(),
                };
                view! {
                    <tr data-testid="gate-row" data-set=r.set data-metric=r.metric.clone()
                        data-champion=opt(r.champion) data-challenger=opt(r.challenger)>
                        <td>{i.f(set, &[("metric", &r.metric.replace('_', " "))])}</td>
                        <td class="num">{pct(i, r.champion)}</td>
                        <td class="num">{pct(i, r.challenger)}</td>
                        <td class="num">{pp(i, r.delta())}</td>
                        <td>{rule}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h4>{i.f(Msg::MonitorGateTitle, &[("champion", &champion), ("challenger", &challenger)])}</h4>
            <div class="table-wrap short">
                <table data-testid="gate" data-promote=promote.map(|p| p.to_string())>
                    <thead><tr>
                        <th>{tr(Msg::MonitorColSet)}</th>
                        <th class="num">{tr(Msg::MonitorColChampion)}</th>
                        <th class="num">{tr(Msg::MonitorColChallenger)}</th>
                        <th class="num">{tr(Msg::MonitorColChange)}</th>
                        <th>{tr(Msg::MonitorColRule)}</th>
                    </tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
            <p>{promote.map(|p| tr(if p { Msg::MonitorVerdictPromote } else { Msg::MonitorVerdictReject })())}</p>
        }
    });
    let guard = report.promotion_guard.clone().map(|g| {
        let row = |who: &str, a: Option<GuardAgreement>, testid: &'static str| {
            view! {
                <tr data-testid=testid data-version=who.to_string() data-n=a.map(|a| a.n)
                    data-agreement=opt(a.map(|a| a.agreement)) data-ci-low=opt(a.map(|a| a.ci_low)) data-ci-high=opt(a.map(|a| a.ci_high))>
                    <td>{who.to_string()}</td>
                    <td class="num">{a.map(|a| a.n)}</td>
                    <td class="num">{pct(i, a.map(|a| a.agreement))}</td>
                    <td class="num">{a.map_or_else(|| "—".into(), |a| format!("{} – {}", i.percent(a.ci_low, 1), i.percent(a.ci_high, 1)))}</td>
                </tr>
            }
        };
        view! {
            <h4>{i.f(Msg::MonitorGuardTitle, &[("champion", &g.champion), ("parent", &g.parent), ("since", &when(&g.since))])}</h4>
            <div class="table-wrap short">
                <table data-testid="guard" data-decision=g.decision.as_str().to_string()>
                    <thead><tr>
                        <th>{tr(Msg::MonitorColVersion)}</th>
                        <th class="num">{tr(Msg::MonitorColFeedback)}</th>
                        <th class="num">{tr(Msg::MonitorColAgreement)}</th>
                        <th class="num">{tr(Msg::MonitorColInterval)}</th>
                    </tr></thead>
                    <tbody>
                        {row(&g.champion, g.champion_agreement, "guard-champion")}
                        {row(&g.parent, g.parent_agreement, "guard-parent")}
                    </tbody>
                </table>
            </div>
            // A rollback's report already says this as its reason.
            {(g.reason != entry.reason).then(|| view! { <p class="reason">{g.reason.clone()}</p> })}
        }
    });
    let monitor = report.monitor.clone().filter(|m| m.n > 0).map(|m| {
        let text = i.f(
            Msg::MonitorMonitorLine,
            &[
                ("agreement", &pct(i, m.accuracy)),
                ("n", &m.n.to_string()),
                ("version", &m.model_version),
                ("low", &pct(i, m.ci_low)),
                ("high", &pct(i, m.ci_high)),
                ("baseline", &pct(i, Some(m.baseline))),
                ("decision", &m.decision),
            ],
        );
        // The label-mix drift the monitor measured, and whether it crossed the alert level.
        let drift = m.psi.map(|psi| {
            let alert = m.psi_threshold;
            let msg = if m.psi_alert { Msg::MonitorReportPsiAlert } else { Msg::MonitorReportPsi };
            i.f(msg, &[("psi", &i.num(psi, 3)), ("alert", &i.num(alert, 2))])
        });
        view! {
            <p data-testid="report-monitor" data-n=m.n data-agreement=opt(m.accuracy)
                data-psi=m.psi.map(|p| p.to_string()) data-psi-alert=m.psi_alert.to_string()>
                {text}
                {drift.map(|d| view! { " " <span class:drift-alert=m.psi_alert>{d}</span> })}
            </p>
        }
    });
    view! { {monitor} {guard} {gate} }
}
