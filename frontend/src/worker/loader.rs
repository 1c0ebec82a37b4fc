//! Loading a bundle: manifest (network first, the cached one when offline), then the tokenizer
//! and the weights (cache first, by hash), verified against the manifest, with one overall
//! progress figure over both files.

use super::cache::ModelCache;
use super::fetch::{fetch_bytes, FetchError};
use super::js_bytes::JsReader;
use crate::browser::{now_ms, wasm_memory_bytes};
use crate::bundle_url::file_url;
use crate::engine::Engine;
use crate::protocol::{FailureKind, ReadyInfo};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use shared::bundle::{BundleError, MANIFEST_FILE, MODEL_FILE};
use shared::Manifest;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Bundle(BundleError),
}

impl LoadError {
    pub fn kind(&self) -> FailureKind {
        match self {
            LoadError::Fetch(_) => FailureKind::Fetch,
            LoadError::Bundle(BundleError::Hash { .. } | BundleError::Size { .. }) => FailureKind::Integrity,
            LoadError::Bundle(_) => FailureKind::Bundle,
        }
    }
}

impl From<BundleError> for LoadError {
    fn from(e: BundleError) -> Self {
        LoadError::Bundle(e)
    }
}

/// Checks a file against the manifest. The sha256 comes from WebCrypto when the page has it
/// (native code: it took a warm start's worker load from ~970 to ~780 ms on the 135 MB
/// roberta-base bundle), else from the wasm implementation (`crypto.subtle` exists only in
/// secure contexts: https or localhost).
async fn verify(manifest: &Manifest, name: &str, bytes: &Uint8Array) -> Result<(), BundleError> {
    match webcrypto_sha256(bytes).await {
        Some(hex) => manifest.verify_digest(name, bytes.length() as u64, &hex),
        None => manifest.verify_reader(name, &mut JsReader::new(bytes)),
    }
}

/// `crypto.subtle.digest("SHA-256", bytes)` as lowercase hex, or `None` where unavailable.
async fn webcrypto_sha256(bytes: &Uint8Array) -> Option<String> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok().filter(|s| s.is_object())?;
    let digest: Function = Reflect::get(&subtle, &"digest".into()).ok()?.dyn_into().ok()?;
    let promise: Promise = digest.call2(&subtle, &"SHA-256".into(), bytes).ok()?.dyn_into().ok()?;
    let hash = Uint8Array::new(&JsFuture::from(promise).await.ok()?);
    Some(hash.to_vec().iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads the bundle at `base` (normalized, absolute); `progress(loaded, total)` in bytes.
pub async fn load(base: &str, mut progress: impl FnMut(u64, u64)) -> Result<(Engine, ReadyInfo), LoadError> {
    let t0 = now_ms();
    let (cache, cache_unavailable) = match ModelCache::open().await {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    let cached_manifest = match &cache {
        Some(c) => c.manifest(base).await,
        None => None,
    };
    let (manifest_bytes, offline) = match fetch_bytes(&file_url(base, MANIFEST_FILE), None, |_| {}).await {
        Ok(b) => (b.to_vec(), false),
        // Offline (or the bundle host is down): the last manifest we loaded still names
        // files that are in the cache.
        Err(e) => match &cached_manifest {
            Some(b) => (b.clone(), true),
            None => return Err(e.into()),
        },
    };
    let manifest = Manifest::from_json(&manifest_bytes)?;
    let previous = cached_manifest.and_then(|b| Manifest::from_json(&b).ok()).map(|m| m.version);

    let names = [manifest.tokenizer.clone(), MODEL_FILE.to_string()];
    let entries: Vec<_> = names
        .iter()
        .map(|n| manifest.files.get(n).cloned().ok_or_else(|| BundleError::Unlisted(n.clone())))
        .collect::<Result<_, _>>()?;
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let mut done = 0;
    let mut from_cache = true;
    let mut files = Vec::with_capacity(2);
    progress(0, total);
    for (name, entry) in names.iter().zip(&entries) {
        let hit = match &cache {
            Some(c) => c.file(&entry.sha256).await,
            None => None,
        };
        let cached = hit.is_some();
        let bytes = match hit {
            Some(b) => b,
            None => {
                from_cache = false;
                let url = file_url(base, name);
                fetch_bytes(&url, Some(entry.size), |n| progress(done + n.min(entry.size), total)).await?
            }
        };
        // Checked before caching, so a broken download is never kept; a damaged cache entry
        // is dropped, so it cannot fail every later visit.
        if let Err(e) = verify(&manifest, name, &bytes).await {
            if let (Some(c), true) = (&cache, cached) {
                c.remove_file(&entry.sha256).await;
            }
            return Err(e.into());
        }
        if let (Some(c), false) = (&cache, cached) {
            if let Err(e) = c.put_file(&entry.sha256, &bytes).await {
                web_sys::console::warn_1(&format!("not cached ({name}): {e}").into());
            }
        }
        done += entry.size;
        progress(done, total);
        files.push(bytes);
    }
    let model = std::io::BufReader::new(JsReader::new(&files[1]));
    let engine = Engine::new(manifest.clone(), &files[0].to_vec(), model)?;
    // The downloaded bytes are garbage once the weights are in wasm memory.
    drop(files);
    if let Some(c) = &cache {
        if !offline {
            let _ = c.put_manifest(base, &manifest_bytes).await;
        }
        let keep: Vec<&str> = entries.iter().map(|e| e.sha256.as_str()).collect();
        c.prune_files(&keep).await;
    }
    let replaced = previous.filter(|p| p != &manifest.version);
    let info = ReadyInfo {
        manifest,
        bundle_url: base.to_string(),
        from_cache,
        offline,
        replaced,
        cache_unavailable,
        load_ms: now_ms() - t0,
        wasm_memory_bytes: wasm_memory_bytes(),
    };
    Ok((engine, info))
}
