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
mod review;
mod update;

use crate::i18n::Msg;
use i18n::tr;
use leptos::prelude::*;

pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    provide_context(i18n::I18n::start());
    let config = config::Config::from_page();
    let model = model::Model::start(config.bundle_url.clone());
    provide_context(model);
    provide_context(feedback::Feedback::start(config.feedback_url()));
    update::announce_new_build(model);
    view! {
        <header class="top">
            <h1>{tr(Msg::AppName)}</h1>
            <feedback::OutboxBadge />
            <span class="spacer"></span>
            <i18n::LanguageSwitch />
        </header>
        <main>
            <model_panel::StatusBar />
            <analyze::AnalyzePanel />
            <batch::BatchPanel />
            <model_panel::ModelPanel />
        </main>
        <footer><p>{tr(Msg::FooterPrivacy)}</p></footer>
    }
}
