//! A model from a bundle's files: the text encoder from `tokenizer.json`, the quantized
//! classifier from `model.gguf` (the manifest, its checks and its format are `shared::bundle`).

use crate::gguf::GgufWeights;
use crate::tokenize::{TextEncoder, TokenizeError};
use crate::{Classifier, ModelError};
use candle_core::Device;
use shared::bundle::{BundleError, Manifest, MODEL_FILE};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The model parts of a bundle, from its manifest.
pub trait BundleModel {
    /// The text encoder from the bundle's `tokenizer.json` bytes, verified first.
    fn text_encoder(&self, tokenizer_json: &[u8]) -> Result<TextEncoder, LoadError>;
    /// The text encoder from `tokenizer.json` bytes the caller has already checked against the
    /// manifest: the browser's loader checks downloads with WebCrypto, and its cache holds only
    /// checked files.
    fn text_encoder_from_checked(&self, tokenizer_json: &[u8]) -> Result<TextEncoder, LoadError>;
    /// The quantized classifier from the bundle's `model.gguf` bytes, verified first.
    fn classifier(&self, model_gguf: &[u8], device: &Device) -> Result<Classifier, LoadError>;
    /// The quantized classifier read tensor by tensor from an already verified `model.gguf`
    /// (see `Manifest::verify_reader`), so the file's bytes are never held next to the weights.
    fn classifier_from_reader<R: std::io::Read + std::io::Seek>(
        &self,
        reader: &mut R,
        device: &Device,
    ) -> Result<Classifier, LoadError>;
}

impl BundleModel for Manifest {
    fn text_encoder(&self, tokenizer_json: &[u8]) -> Result<TextEncoder, LoadError> {
        self.verify(&self.tokenizer, tokenizer_json)?;
        self.text_encoder_from_checked(tokenizer_json)
    }

    fn text_encoder_from_checked(&self, tokenizer_json: &[u8]) -> Result<TextEncoder, LoadError> {
        let tok = tokenizers::Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| TokenizeError::BadFile { file: "tokenizer.json", detail: e.to_string() })?;
        Ok(TextEncoder::new(tok, &self.config, self.preprocessing)?)
    }

    fn classifier(&self, model_gguf: &[u8], device: &Device) -> Result<Classifier, LoadError> {
        self.verify(MODEL_FILE, model_gguf)?;
        self.classifier_from_reader(&mut std::io::Cursor::new(model_gguf), device)
    }

    fn classifier_from_reader<R: std::io::Read + std::io::Seek>(
        &self,
        reader: &mut R,
        device: &Device,
    ) -> Result<Classifier, LoadError> {
        let mut weights = GgufWeights::read(reader, &self.config, device).map_err(ModelError::from)?;
        Ok(Classifier::new(self.config.clone(), &mut weights, device)?)
    }
}
