//! Downloading a bundle file with byte-level progress (the model is the one large download).
//! The body stays in JS memory (see `js_bytes`).

use super::js_bytes::JsBuffer;
use crate::browser::js_error_text;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestCache, RequestInit, Response, WorkerGlobalScope};

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("could not fetch {url}: {detail} (offline, blocked by CORS, or the server is down)")]
    Network { url: String, detail: String },
    #[error("could not fetch {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// Nothing at that URL (the Hub answers 401 for a repo that does not exist or is private).
    #[error(
        "no model at {url} (HTTP {status}). Open the page with ?model=OWNER/NAME (a Hub model repo) or ?model=<bundle folder URL>; a deployment sets it in index.html's <meta name=\"sentiment-model-url\"> (the deploy workflow writes it from the repository variable SENTIMENT_MODEL_REPO)"
    )]
    NotFound { url: String, status: u16 },
    #[error("reading {url} failed: {detail}")]
    Read { url: String, detail: String },
}

/// The whole body of `url`; `progress` gets the bytes received so far after every chunk.
pub async fn fetch_bytes(
    url: &str,
    size_hint: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<Uint8Array, FetchError> {
    let net = |e: JsValue| FetchError::Network { url: url.to_string(), detail: js_error_text(&e) };
    let read = |e: JsValue| FetchError::Read { url: url.to_string(), detail: js_error_text(&e) };
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    // Bypass the HTTP cache entirely: the Cache API (by hash) is our cache, and revalidation
    // is unsafe here — bundle files keep their names across versions, and two versions written
    // within the same second share a Last-Modified, so a 304 would hand back the old bytes.
    let init = RequestInit::new();
    init.set_cache(RequestCache::NoStore);
    let resp: Response = JsFuture::from(scope.fetch_with_str_and_init(url, &init)).await.map_err(net)?.unchecked_into();
    if !resp.ok() {
        let (url, status) = (url.to_string(), resp.status());
        return Err(match status {
            401 | 403 | 404 | 410 => FetchError::NotFound { url, status },
            _ => FetchError::Status { url, status },
        });
    }
    let Some(body) = resp.body() else { return Ok(Uint8Array::new_with_length(0)) };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    // Never trust a size hint for more than a reservation (a Content-Length-less Hub redirect
    // or a wrong manifest must not make us allocate a huge buffer up front).
    let mut out = JsBuffer::with_capacity(size_hint.unwrap_or(0).min(1 << 30) as u32);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(read)?;
        if Reflect::get(&chunk, &"done".into()).map_err(read)?.is_truthy() {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(read)?.unchecked_into();
        out.push(&value);
        progress(out.len() as u64);
    }
    Ok(out.finish())
}
