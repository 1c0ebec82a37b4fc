//! Tokenizer building (from `tokenizer.json`, RoBERTa `vocab.json` + `merges.txt`, or BERT
//! `vocab.txt`) and batching with truncation and padding.

use shared::config::{Architecture, ModelConfig};
use shared::preprocess::Preprocess;
use std::collections::HashMap;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("no tokenizer files: expected tokenizer.json, or vocab.json + merges.txt, or vocab.txt")]
    NoFiles,
    #[error("{file} is invalid: {detail}")]
    BadFile { file: &'static str, detail: String },
    #[error("special token {token:?} is not in {file}")]
    MissingSpecial { token: &'static str, file: &'static str },
    #[error("tokenizer failed: {0}")]
    Encode(String),
}

fn bad(file: &'static str, detail: impl ToString) -> TokenizeError {
    TokenizeError::BadFile { file, detail: detail.to_string() }
}

/// The tokenizer files a checkpoint may ship, as bytes. The first usable source wins:
/// `tokenizer.json`, then `vocab.json` + `merges.txt`, then `vocab.txt`.
#[derive(Default, Clone, Copy)]
pub struct TokenizerFiles<'a> {
    pub tokenizer_json: Option<&'a [u8]>,
    pub vocab_json: Option<&'a [u8]>,
    pub merges_txt: Option<&'a [u8]>,
    pub vocab_txt: Option<&'a [u8]>,
    pub tokenizer_config_json: Option<&'a [u8]>,
}

/// Builds the fast tokenizer that transformers would build for these files.
pub fn build_tokenizer(files: TokenizerFiles<'_>, config: &ModelConfig) -> Result<Tokenizer, TokenizeError> {
    if let Some(json) = files.tokenizer_json {
        return Tokenizer::from_bytes(json).map_err(|e| bad("tokenizer.json", e));
    }
    if let (Some(vocab), Some(merges)) = (files.vocab_json, files.merges_txt) {
        return byte_level_bpe(vocab, merges);
    }
    if let Some(vocab) = files.vocab_txt {
        let lowercase = lowercase_from_config(files.tokenizer_config_json, config)?;
        return wordpiece(vocab, lowercase);
    }
    Err(TokenizeError::NoFiles)
}

/// RoBERTa's tokenizer: byte-level BPE without a prefix space, `<s> … </s>` around the text.
fn byte_level_bpe(vocab_json: &[u8], merges_txt: &[u8]) -> Result<Tokenizer, TokenizeError> {
    let vocab: HashMap<String, u32> = serde_json::from_slice(vocab_json).map_err(|e| bad("vocab.json", e))?;
    let merges_text = std::str::from_utf8(merges_txt).map_err(|e| bad("merges.txt", e))?;
    let mut merges = Vec::new();
    for (n, line) in merges_text.lines().enumerate() {
        if line.starts_with("#version") || line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => merges.push((a.to_string(), b.to_string())),
            _ => return Err(bad("merges.txt", format!("line {} is not two tokens: {line:?}", n + 1))),
        }
    }
    let id =
        |t: &'static str| vocab.get(t).copied().ok_or(TokenizeError::MissingSpecial { token: t, file: "vocab.json" });
    let (bos, eos) = (id("<s>")?, id("</s>")?);
    let specials = ["<s>", "<pad>", "</s>", "<unk>"];
    for t in specials {
        id(t)?;
    }
    let has_mask = vocab.contains_key("<mask>");
    let model = BPE::builder()
        .vocab_and_merges(vocab.into_iter().collect::<tokenizers::models::bpe::Vocab>(), merges)
        .build()
        .map_err(|e| bad("merges.txt", e))?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), eos), ("<s>".into(), bos)).add_prefix_space(false),
    ));
    let mut added: Vec<AddedToken> = specials.iter().map(|t| AddedToken::from(*t, true)).collect();
    if has_mask {
        added.push(AddedToken::from("<mask>", true).lstrip(true));
    }
    tok.add_special_tokens(added).map_err(|e| TokenizeError::Encode(e.to_string()))?;
    Ok(tok)
}

/// BERT's tokenizer: WordPiece with BERT normalisation, `[CLS] … [SEP]` around the text.
fn wordpiece(vocab_txt: &[u8], lowercase: bool) -> Result<Tokenizer, TokenizeError> {
    let vocab = WordPiece::read_bytes(vocab_txt).map_err(|e| bad("vocab.txt", e))?;
    let id =
        |t: &'static str| vocab.get(t).copied().ok_or(TokenizeError::MissingSpecial { token: t, file: "vocab.txt" });
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    for t in specials {
        id(t)?;
    }
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| bad("vocab.txt", e))?;
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase))).map_err(|e| bad("vocab.txt", e))?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    tok.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
    let added: Vec<AddedToken> = specials.iter().map(|t| AddedToken::from(*t, true)).collect();
    tok.add_special_tokens(added).map_err(|e| TokenizeError::Encode(e.to_string()))?;
    Ok(tok)
}

/// `do_lower_case` from `tokenizer_config.json`; BERT's default (true) when absent.
fn lowercase_from_config(tokenizer_config: Option<&[u8]>, config: &ModelConfig) -> Result<bool, TokenizeError> {
    let default = config.architecture == Architecture::Bert;
    let Some(bytes) = tokenizer_config else { return Ok(default) };
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad("tokenizer_config.json", e))?;
    Ok(v.get("do_lower_case").and_then(|v| v.as_bool()).unwrap_or(default))
}

/// A tokenizer bound to one model: preprocessing, truncation to the model's limit, padding.
#[derive(Clone)]
pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_tokens: usize,
    pad_id: u32,
    preprocess: Preprocess,
}

impl TextEncoder {
    pub fn new(mut tokenizer: Tokenizer, config: &ModelConfig, preprocess: Preprocess) -> Result<Self, TokenizeError> {
        // Our own batching pads; a padding setting carried in a tokenizer.json would fight it.
        tokenizer.with_padding(None);
        let max_tokens = config.max_tokens();
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| TokenizeError::Encode(e.to_string()))?;
        Ok(TextEncoder { tokenizer, max_tokens, pad_id: config.pad_token_id, preprocess })
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn preprocess(&self) -> Preprocess {
        self.preprocess
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of one text after preprocessing, with special tokens, truncated.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let text = self.preprocess.apply(text);
        let enc = self.tokenizer.encode(text.as_ref(), true).map_err(|e| TokenizeError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn encode_all<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, TokenizeError> {
        texts.iter().map(|t| self.encode(t.as_ref())).collect()
    }

    /// Right-pads sequences to the longest one.
    pub fn pad(&self, seqs: &[Vec<u32>]) -> PaddedBatch {
        PaddedBatch::new(seqs, self.pad_id)
    }

    /// The tokenizer as `tokenizer.json` (what a bundle ships), without our truncation.
    pub fn to_json(&self) -> Result<String, TokenizeError> {
        let mut t = self.tokenizer.clone();
        t.with_truncation(None).map_err(|e| TokenizeError::Encode(e.to_string()))?;
        t.to_string(false).map_err(|e| TokenizeError::Encode(e.to_string()))
    }
}

/// Token ids and attention mask of a right-padded batch, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
}

impl PaddedBatch {
    pub fn new(seqs: &[Vec<u32>], pad_id: u32) -> Self {
        let seq = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len() * seq);
        let mut mask = Vec::with_capacity(seqs.len() * seq);
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad_id, seq - s.len()));
            mask.extend(std::iter::repeat_n(1, s.len()));
            mask.extend(std::iter::repeat_n(0, seq - s.len()));
        }
        PaddedBatch { ids, mask, batch: seqs.len(), seq }
    }
}
