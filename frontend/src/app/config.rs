//! Where the model bundle and the feedback API are: `?model=` / `?api=` in the page URL, else
//! `<meta name="sentiment-model-url">` / `<meta name="sentiment-api-url">` in index.html (for a
//! deployment), else the same origin (`/model/`, `/api/feedback`).

use crate::bundle_url::{expand_hub_repo, normalize_base};
use wasm_bindgen::JsCast;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Absolute, ends with `/`.
    pub bundle_url: String,
    /// The API origin/prefix without a trailing slash (empty: same origin).
    pub api_base: String,
}

fn query(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name).filter(|v| !v.trim().is_empty())
}

fn meta(name: &str) -> Option<String> {
    let doc = web_sys::window()?.document()?;
    let el = doc.query_selector(&format!("meta[name=\"{name}\"]")).ok()??;
    el.dyn_into::<web_sys::Element>().ok()?.get_attribute("content").filter(|v| !v.trim().is_empty())
}

/// `spec` resolved against the page's URL (the worker runs from another path).
fn absolute(spec: &str) -> String {
    let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    web_sys::Url::new_with_base(spec, &href).map(|u| u.href()).unwrap_or_else(|_| spec.to_string())
}

impl Config {
    pub fn from_page() -> Config {
        let model = query("model").or_else(|| meta("sentiment-model-url")).unwrap_or_else(|| "/model/".into());
        let bundle_url = normalize_base(&absolute(&normalize_base(&expand_hub_repo(&model))));
        let api_base = query("api").or_else(|| meta("sentiment-api-url")).unwrap_or_default();
        Config { bundle_url, api_base: api_base.trim().trim_end_matches('/').to_string() }
    }

    pub fn feedback_url(&self) -> String {
        format!("{}/api/feedback", self.api_base)
    }
}
