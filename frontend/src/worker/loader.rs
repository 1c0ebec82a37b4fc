//! Loading a bundle: manifest (network first, the cached one when offline), then the tokenizer
//! and the weights (cache first, by hash; downloads verified against the manifest), with one
//! overall progress figure over both files.

use super::cache::{CacheRead, ModelCache};
use super::fetch::{fetch_bytes, FetchError};
use super::js_bytes::JsReader;
use crate::browser::{now_ms, sleep, wasm_memory_bytes};
use crate::bundle_url::file_url;
use crate::engine::Engine;
use crate::protocol::{FailureKind, ReadyInfo};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use model::{BundleModel, Quantization};
use shared::bundle::{BundleError, FileEntry, MANIFEST_FILE, MODEL_FILE};
use shared::{Manifest, ModelConfig};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Bundle(model::LoadError),
}

impl LoadError {
    pub fn kind(&self) -> FailureKind {
        match self {
            LoadError::Fetch(_) => FailureKind::Fetch,
            LoadError::Bundle(model::LoadError::Bundle(BundleError::Hash { .. } | BundleError::Size { .. })) => {
                FailureKind::Integrity
            }
            LoadError::Bundle(_) => FailureKind::Bundle,
        }
    }
}

impl From<BundleError> for LoadError {
    fn from(e: BundleError) -> Self {
        LoadError::Bundle(e.into())
    }
}

impl From<model::LoadError> for LoadError {
    fn from(e: model::LoadError) -> Self {
        LoadError::Bundle(e)
    }
}

/// Checks a downloaded file against the manifest. The sha256 comes from WebCrypto when the page
/// has it (native code: ~190 ms less than the wasm implementation on the 135 MB roberta-base
/// bundle), else from the wasm implementation (`crypto.subtle` exists only in secure contexts:
/// https or localhost).
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
    Some(hex::encode(hash.to_vec()))
}

fn listed(manifest: &Manifest, name: &str) -> Result<FileEntry, BundleError> {
    manifest.files.get(name).cloned().ok_or_else(|| BundleError::Unlisted(name.to_string()))
}

/// Gets the bundle's files, from the cache or the network, with one progress figure over all.
struct Files<'a> {
    base: &'a str,
    manifest: &'a Manifest,
    cache: Option<&'a ModelCache>,
    total: u64,
    done: u64,
}

impl Files<'_> {
    /// The file's bytes: the cache entry when `hit` finds one, else a download, checked
    /// against the manifest before it is cached, so a broken download is never kept.
    ///
    /// A cache entry is not hashed again: its key is the sha256 it was checked against when it
    /// was stored, and the browser checks its own entries (Chromium's disk cache keeps a
    /// checksum per entry). Hashing it again cost a warm start ~230 ms for the 135 MB
    /// roberta-base bundle on the AMD machine. Its size is still checked, and an entry the model
    /// cannot be built from is dropped (`forget`), so it cannot fail every later visit.
    /// Also says whether the bytes came from the cache.
    async fn bytes(
        &mut self,
        name: &str,
        entry: &FileEntry,
        hit: Option<CacheRead>,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<(Uint8Array, bool), LoadError> {
        let cached = match hit {
            Some(read) => read.bytes().await,
            None => None,
        };
        let (bytes, from_cache) = match cached {
            Some(bytes) if u64::from(bytes.length()) == entry.size => (bytes, true),
            stale => {
                if stale.is_some() {
                    self.forget(entry).await;
                }
                let (done, total) = (self.done, self.total);
                let url = file_url(self.base, name);
                let bytes = fetch_bytes(&url, Some(entry.size), |n| progress(done + n.min(entry.size), total)).await?;
                verify(self.manifest, name, &bytes).await?;
                if let Some(c) = self.cache {
                    if let Err(e) = c.put_file(&entry.sha256, &bytes).await {
                        web_sys::console::warn_1(&format!("not cached ({name}): {e}").into());
                    }
                }
                (bytes, false)
            }
        };
        self.done += entry.size;
        progress(self.done, self.total);
        Ok((bytes, from_cache))
    }

    async fn forget(&self, entry: &FileEntry) {
        if let Some(c) = self.cache {
            c.remove_file(&entry.sha256).await;
        }
    }
}

/// Runs a tiny model like the bundle's (`crate::warm_up`), yielding to the event loop between
/// passes so the load's reads are answered meanwhile. A failure only costs the head start.
async fn warm_up(config: &ModelConfig, quantization: Quantization) {
    let Ok(model) = crate::warm_up::tiny_model(config, quantization) else { return };
    for batch in crate::warm_up::batches(config.pad_token_id) {
        sleep(0).await;
        let _ = model.forward(&batch);
    }
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

    let tokenizer_entry = listed(&manifest, &manifest.tokenizer)?;
    let model_entry = listed(&manifest, MODEL_FILE)?;
    let total = tokenizer_entry.size + model_entry.size;
    progress(0, total);
    // Both cache reads start now and run in the browser while the worker builds the tokenizer.
    let (tokenizer_hit, model_hit) = match &cache {
        Some(c) => (Some(c.read_file(&tokenizer_entry.sha256)), Some(c.read_file(&model_entry.sha256))),
        None => (None, None),
    };
    let mut files = Files { base, manifest: &manifest, cache: cache.as_ref(), total, done: 0 };
    let (tokenizer, tokenizer_cached) =
        files.bytes(&manifest.tokenizer, &tokenizer_entry, tokenizer_hit, &mut progress).await?;
    // Checked by `Files::bytes`: not hashed again.
    let encoder = manifest.text_encoder_from_checked(&tokenizer.to_vec());
    drop(tokenizer);
    if encoder.is_err() && tokenizer_cached {
        files.forget(&tokenizer_entry).await;
    }
    let encoder = encoder?;
    // The worker is idle while the weights arrive: it gets V8 to optimize the inference code.
    let (config, quantization) = (manifest.config.clone(), manifest.quantization);
    wasm_bindgen_futures::spawn_local(async move { warm_up(&config, quantization).await });
    let (model, model_cached) = files.bytes(MODEL_FILE, &model_entry, model_hit, &mut progress).await?;
    let engine = Engine::new(manifest.clone(), encoder, std::io::BufReader::new(JsReader::new(&model)));
    // The downloaded bytes are garbage once the weights are in wasm memory.
    drop(model);
    if engine.is_err() && model_cached {
        files.forget(&model_entry).await;
    }
    let engine = engine?;
    let from_cache = tokenizer_cached && model_cached;
    let entries = [tokenizer_entry, model_entry];
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
        kernel: kernel(quantization).into(),
    };
    Ok((engine, info))
}

/// The kernel the model's weight products run on in this worker build and browser.
fn kernel(quantization: Quantization) -> &'static str {
    match quantization {
        Quantization::Q8_0 | Quantization::Q4K => kernels::wasm::Kernel::best().name(),
        Quantization::F16 | Quantization::F32 => "candle",
    }
}
