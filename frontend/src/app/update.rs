//! A new deploy of the page, announced like a new model. The build's id is a `<meta>` that the
//! build writes into index.html (`scripts/trunk-post-build.sh`, which also makes the service
//! worker that caches this build for offline visits); the page remembers the last one it ran.

use super::model::{Model, Notice};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

const STORAGE_KEY: &str = "sentiment-monitor.build.v1";

/// This page's build id, or `None` in a build without the post-build step.
pub fn build_id() -> Option<String> {
    let doc = web_sys::window()?.document()?;
    let el = doc.query_selector("meta[name=\"sentiment-build\"]").ok()??;
    let id = el.dyn_into::<web_sys::Element>().ok()?.get_attribute("content")?;
    (!id.is_empty() && id != "dev").then_some(id)
}

/// Shows "the page was updated" when this build differs from the one of the last visit.
pub fn announce_new_build(model: Model) {
    let Some(build) = build_id() else { return };
    let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) else { return };
    let was = storage.get_item(STORAGE_KEY).ok().flatten();
    let _ = storage.set_item(STORAGE_KEY, &build);
    if let Some(was) = was.filter(|w| *w != build) {
        model.notice.set(Some(Notice::NewApp { build, was }));
    }
}
