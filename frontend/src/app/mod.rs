//! The page: components read the [`model::Model`], [`feedback::Feedback`] and [`i18n::I18n`]
//! handles from context; none ever blocks on the model (it runs in the worker).

mod analyze;
mod batch;
mod config;
mod explain;
mod feedback;
mod helper;
mod i18n;
mod model;
mod model_panel;
mod monitor;
mod review;
mod update;

use crate::i18n::Msg;
use i18n::tr;
use leptos::prelude::*;

/// Which view the URL's fragment asks for: `#monitor`, or the page itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Page,
    Monitor,
}

fn view_from_hash() -> View {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    if hash == "#monitor" {
        View::Monitor
    } else {
        View::Page
    }
}

pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    provide_context(i18n::I18n::start());
    let config = config::Config::from_page();
    let model = model::Model::new(config.bundle_url.clone());
    provide_context(model);
    provide_context(feedback::Feedback::start(config.feedback_url()));
    update::announce_new_build(model);
    let current = RwSignal::new(view_from_hash());
    // The model starts with the first visit to the page, not on the monitor (index.html does the
    // same for its early worker).
    Effect::new(move || {
        if current.get() == View::Page {
            model.ensure_started();
        }
    });
    let listener = window_event_listener(leptos::ev::hashchange, move |_| current.set(view_from_hash()));
    on_cleanup(move || listener.remove());
    let nav_link = move |target: View, href: &'static str, label: Msg| {
        view! {
            <a href=href aria-current=move || (current.get() == target).then_some("page")
                data-testid=if target == View::Monitor { "nav-monitor" } else { "nav-page" }>{tr(label)}</a>
        }
    };
    view! {
        <header class="top">
            <h1>{tr(Msg::AppName)}</h1>
            <nav class="views">
                {nav_link(View::Page, "#", Msg::NavAnalyse)}
                {nav_link(View::Monitor, "#monitor", Msg::NavMonitor)}
            </nav>
            <feedback::OutboxBadge />
            <span class="spacer"></span>
            <i18n::LanguageSwitch />
        </header>
        // The page stays mounted while the monitor shows (what was typed or analysed is kept);
        // the monitor is mounted on each visit, so it shows fresh figures.
        <main hidden=move || current.get() != View::Page>
            <model_panel::StatusBar />
            <analyze::AnalyzePanel />
            <batch::BatchPanel />
            <model_panel::ModelPanel />
        </main>
        {move || (current.get() == View::Monitor).then(|| view! { <main><monitor::MonitorView /></main> })}
        <footer><p>{tr(Msg::FooterPrivacy)}</p></footer>
    }
}
