//! The page: components read the [`model::Model`] and [`feedback::Feedback`] handles from
//! context; neither ever blocks on the model (it runs in the worker).

mod analyze;
mod batch;
mod config;
mod feedback;
mod model;
mod model_panel;

use leptos::prelude::*;

pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let config = config::Config::from_page();
    provide_context(model::Model::start(config.bundle_url.clone()));
    provide_context(feedback::Feedback::start(config.feedback_url()));
    view! {
        <header class="top">
            <h1>"Sentiment Monitor"</h1>
            <feedback::OutboxBadge />
        </header>
        <main>
            <model_panel::StatusBar />
            <analyze::AnalyzePanel />
            <batch::BatchPanel />
            <model_panel::ModelPanel />
        </main>
        <footer><p>"Texts are analysed on this device. Only feedback you send leaves it."</p></footer>
    }
}
