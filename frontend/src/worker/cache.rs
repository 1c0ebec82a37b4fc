//! Bundle files in the browser's Cache API, keyed by their sha256 (so a file shared by two
//! versions is downloaded once and a new version never reads stale bytes), plus the last
//! manifest seen per bundle URL (so a second visit can start offline and a new version is
//! noticed). Without the Cache API (private windows, insecure origins) everything still works,
//! just without caching.

use crate::browser::js_error_text;
use js_sys::{Array, ArrayBuffer, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::{Closure, JsValue};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Cache, CacheStorage, Request, Response};

const CACHE_NAME: &str = "sentiment-monitor-model-v1";
/// Keys are URLs by the Cache API's rules; this host is never fetched.
const KEY_ORIGIN: &str = "https://sentiment-monitor.invalid";

pub struct ModelCache {
    cache: Cache,
}

fn storage() -> Result<CacheStorage, String> {
    let caches = Reflect::get(&js_sys::global(), &"caches".into()).map_err(|e| js_error_text(&e))?;
    if caches.is_undefined() || caches.is_null() {
        return Err("the Cache API is not available here (private window or insecure origin)".into());
    }
    Ok(caches.unchecked_into())
}

fn hash_key(sha256: &str) -> String {
    format!("{KEY_ORIGIN}/sha256/{sha256}")
}

fn manifest_key(bundle_url: &str) -> String {
    format!("{KEY_ORIGIN}/manifest/{}", String::from(js_sys::encode_uri_component(bundle_url)))
}

/// `promise.then(f)`, where `f`'s result (a promise, or nothing) is chained: js-sys's
/// `Promise::then` drops its callback's result.
fn then(promise: &Promise, f: impl FnOnce(JsValue) -> Option<JsValue> + 'static) -> Promise {
    let callback = Closure::once_into_js(move |v: JsValue| f(v).unwrap_or(JsValue::UNDEFINED));
    let then: Function = Reflect::get(promise, &"then".into()).expect("a promise has then").unchecked_into();
    then.call1(promise, &callback).map(Promise::unchecked_from_js).unwrap_or_else(|e| Promise::reject(&e))
}

/// A cache read under way (`ModelCache::read_file`).
pub struct CacheRead(JsFuture);

impl CacheRead {
    /// The entry's bytes, left in JS memory (see `js_bytes`); `None` when there is no entry.
    pub async fn bytes(self) -> Option<Uint8Array> {
        let body = self.0.await.ok()?;
        body.is_instance_of::<ArrayBuffer>().then(|| Uint8Array::new(&body))
    }
}

impl ModelCache {
    pub async fn open() -> Result<ModelCache, String> {
        let cache = JsFuture::from(storage()?.open(CACHE_NAME)).await.map_err(|e| js_error_text(&e))?;
        Ok(ModelCache { cache: cache.unchecked_into() })
    }

    async fn put(&self, key: &str, bytes: &Uint8Array) -> Result<(), String> {
        let resp = Response::new_with_opt_buffer_source(Some(bytes)).map_err(|e| js_error_text(&e))?;
        JsFuture::from(self.cache.put_with_str(key, &resp)).await.map(|_| ()).map_err(|e| js_error_text(&e))
    }

    /// Starts reading the entry under `key`. The lookup and the body's read are chained in JS,
    /// so they go on while the worker is busy in wasm. The body is read as a blob first: that
    /// took 230-280 ms for the 135 MB roberta-base model in Chromium, `arrayBuffer()` on the
    /// response 340-355 ms.
    fn read(&self, key: &str) -> CacheRead {
        let lookup = self.cache.match_with_str(key);
        let blob = then(&lookup, |hit| hit.dyn_into::<Response>().ok().and_then(|r| r.blob().ok()).map(Into::into));
        let body = then(&blob, |blob| blob.dyn_into::<Blob>().ok().map(|b| b.array_buffer().into()));
        CacheRead(JsFuture::from(body))
    }

    pub fn read_file(&self, sha256: &str) -> CacheRead {
        self.read(&hash_key(sha256))
    }

    /// A failed write (quota) only costs the next visit a download.
    pub async fn put_file(&self, sha256: &str, bytes: &Uint8Array) -> Result<(), String> {
        self.put(&hash_key(sha256), bytes).await
    }

    pub async fn manifest(&self, bundle_url: &str) -> Option<Vec<u8>> {
        Some(self.read(&manifest_key(bundle_url)).bytes().await?.to_vec())
    }

    pub async fn put_manifest(&self, bundle_url: &str, bytes: &[u8]) -> Result<(), String> {
        self.put(&manifest_key(bundle_url), &Uint8Array::from(bytes)).await
    }

    pub async fn remove_file(&self, sha256: &str) {
        let _ = JsFuture::from(self.cache.delete_with_str(&hash_key(sha256))).await;
    }

    /// Deletes file entries whose hash is not in `keep` (older versions' weights).
    pub async fn prune_files(&self, keep: &[&str]) -> usize {
        let Ok(keys) = JsFuture::from(self.cache.keys()).await else { return 0 };
        let prefix = format!("{KEY_ORIGIN}/sha256/");
        let mut removed = 0;
        for req in Array::from(&keys).iter() {
            let Ok(req) = req.dyn_into::<Request>() else { continue };
            let url = req.url();
            let Some(hash) = url.strip_prefix(&prefix) else { continue };
            if !keep.contains(&hash) && JsFuture::from(self.cache.delete_with_request(&req)).await.is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Removes the whole model cache; the number of entries that were in it.
pub async fn clear() -> Result<usize, String> {
    let storage = storage()?;
    let count = match ModelCache::open().await {
        Ok(c) => JsFuture::from(c.cache.keys()).await.map(|k| Array::from(&k).length() as usize).unwrap_or(0),
        Err(_) => 0,
    };
    JsFuture::from(storage.delete(CACHE_NAME)).await.map_err(|e| js_error_text(&e))?;
    Ok(count)
}
