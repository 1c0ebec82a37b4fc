//! Which words drove a prediction: word-level attribution by occlusion.
//!
//! A word is a run of non-whitespace characters of the text as the user gave it (before the
//! model's preprocessing), so a word's punctuation and emoji stay with it. For every word the
//! model classifies the text with that word deleted (with the whitespace after it, see
//! [`delete_words`]); the word's weight toward a label is
//!
//! ```text
//! weight(word, label) = p(label | text) − p(label | text without the word)
//! ```
//!
//! positive when the word pushes the prediction toward the label, negative when it pushes it
//! away. The full text (alone) and then the occluded ones (in padded batches of at most
//! [`MAX_BATCH_TOKENS`] tokens) run through the same model the prediction used (the shipped
//! quantized bundle in the browser), batched the same way in the browser worker and in
//! `sentiment-trainer explain`, so the two give the same weights up to their kernels'
//! rounding. The browser may split the batches between two workers ([`Occlusion::part`],
//! [`merge`]): every batch is the same, so the weights are too. Occlusion costs one forward row per word but needs no gradients, which the
//! quantized model does not have, and it measures exactly what the faithfulness check deletes.
//!
//! Words the model never reads (past its token limit, when the text is truncated) are not
//! run: their weight is 0 and [`WordWeight::beyond_limit`] says why.

use crate::tokenize::{TextEncoder, TokenizeError};
use crate::{softmax, Classifier, ModelError};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The method's name, as reports and the page state it.
pub const METHOD: &str = "occlusion";

/// Most padded tokens in one forward call: what the browser's batch analysis allows itself
/// (wasm memory never shrinks, so the largest call's activations stay with the worker) and
/// what `predict` uses natively. Larger batches were slower per row in the browser (512: an
/// explanation of a 32-token post took 2.0 s instead of 1.3 s with roberta-base q8_0): the
/// batch's activations no longer stay in the core's cache while the weights stream past.
pub const MAX_BATCH_TOKENS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A word of the text, by byte offsets into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub start: usize,
    pub end: usize,
}

/// The words of `text`: maximal runs of non-whitespace characters.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push(Word { start: s, end: i });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Word { start: s, end: text.len() });
    }
    out
}

/// `text` without the words for which `delete` is true. A deleted word takes the whitespace
/// that follows it; the last kept word keeps the text's own trailing whitespace, so no
/// deletion leaves a space the text did not end with. The text's leading whitespace stays.
pub fn delete_words(text: &str, words: &[Word], delete: impl Fn(usize) -> bool) -> String {
    let Some(last) = words.last() else { return text.to_string() };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..words[0].start]);
    let kept: Vec<usize> = (0..words.len()).filter(|&i| !delete(i)).collect();
    for (n, &i) in kept.iter().enumerate() {
        let w = &words[i];
        out.push_str(&text[w.start..w.end]);
        // The whitespace after this word in the text, or the text's trailing whitespace
        // after the last kept word.
        let gap_end = if n + 1 == kept.len() { text.len() } else { words.get(i + 1).map_or(text.len(), |x| x.start) };
        let gap_start = if n + 1 == kept.len() { last.end } else { w.end };
        out.push_str(&text[gap_start..gap_end]);
    }
    if kept.is_empty() {
        out.push_str(&text[last.end..]);
    }
    out
}

/// One word's weights, in the labels' order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordWeight {
    pub word: String,
    /// Byte offsets into the explained text.
    pub start: usize,
    pub end: usize,
    /// `p(label | text) − p(label | text without the word)`, per label.
    pub weights: Vec<f32>,
    /// The word lies past the model's token limit (the text is truncated before it): it was
    /// not run, and its weights are 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub beyond_limit: bool,
}

/// A prediction with every word's weight toward every label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub method: String,
    pub labels: Vec<String>,
    /// The predicted label and every label's probability, from the same forward rows as the
    /// weights.
    pub label: String,
    pub scores: Vec<f32>,
    /// In text order.
    pub words: Vec<WordWeight>,
}

/// The rows to run for one text: the text itself, then the text without each word the model
/// reads. The text runs alone in the first batch, the occluded texts in padded batches after
/// it. Runs in steps, so the browser worker can report progress and take a cancel between
/// batches; and in parts, so two workers can share one explanation (every part runs the text
/// itself, unless it reuses a prediction of it ([`Occlusion::reuse_text_probs`]), and its share
/// of the other batches; [`merge`] puts the parts together).
pub struct Occlusion {
    text: String,
    words: Vec<Word>,
    /// Words at or past this index are beyond the model's token limit.
    read: usize,
    /// Row 0 is the text; row `i + 1` is the text without word `i`.
    rows: Vec<Vec<u32>>,
    /// The batches this part runs, in order.
    batches: Vec<Range<usize>>,
    /// Batches run so far.
    next: usize,
    probs: Vec<Option<Vec<f32>>>,
}

impl Occlusion {
    pub fn new(encoder: &TextEncoder, text: &str) -> Result<Self, TokenizeError> {
        Self::part(encoder, text, 0, 1)
    }

    /// Part `part` of `parts` (0-based): the text's own row, and every `parts`-th batch of the
    /// occluded rows from the `part`-th.
    pub fn part(encoder: &TextEncoder, text: &str, part: usize, parts: usize) -> Result<Self, TokenizeError> {
        assert!(part < parts, "part {part} of {parts}");
        let words = words(text);
        let read = words_read(encoder, text, &words)?;
        let mut texts = Vec::with_capacity(read + 1);
        texts.push(text.to_string());
        texts.extend((0..read).map(|i| delete_words(text, &words, |j| j == i)));
        let rows = encoder.encode_all(&texts)?;
        let occluded = token_bounded_batches(&rows[1..], MAX_BATCH_TOKENS);
        let mine = occluded.into_iter().skip(part).step_by(parts).map(|b| b.start + 1..b.end + 1);
        let batches = std::iter::once(0..1).chain(mine).collect();
        let probs = vec![None; rows.len()];
        Ok(Occlusion { text: text.to_string(), words, read, rows, batches, next: 0, probs })
    }

    /// Takes the text's own probabilities from a prediction of it the caller already made with
    /// the same model, unpadded as here (the browser worker keeps its last one), so that row is
    /// not run again: one row fewer, and with two workers the part that reuses them runs no more
    /// rows than the other. Call it before the first step.
    pub fn reuse_text_probs(&mut self, probs: Vec<f32>) {
        assert_eq!(self.next, 0, "the text's probabilities are given before the first step");
        self.probs[0] = Some(probs);
        self.batches.retain(|b| b.start != 0);
    }

    /// Forward rows this part runs.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.len()).sum()
    }

    /// Rows run so far.
    pub fn done(&self) -> usize {
        self.batches[..self.next].iter().map(|b| b.len()).sum()
    }

    pub fn is_finished(&self) -> bool {
        self.next == self.batches.len()
    }

    /// Runs the next batch of rows.
    pub fn step(&mut self, encoder: &TextEncoder, classifier: &Classifier) -> Result<(), ModelError> {
        let Some(range) = self.batches.get(self.next).cloned() else { return Ok(()) };
        let batch = encoder.pad(&self.rows[range.clone()]);
        let logits = classifier.forward(&batch)?.logits.to_vec2::<f32>()?;
        for (row, l) in range.zip(&logits) {
            self.probs[row] = Some(softmax(l));
        }
        self.next += 1;
        Ok(())
    }

    /// The weights, once every batch of this part has run; the words of other parts have no
    /// weights yet (see [`merge`]).
    pub fn finish(self, labels: &[String]) -> Explanation {
        assert!(self.is_finished(), "every batch runs before finish");
        let full = self.probs[0].clone().expect("every part runs the text itself or reuses its probabilities");
        let best = crate::argmax(&full);
        let words = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let beyond_limit = i >= self.read;
                let weights = match (beyond_limit, &self.probs.get(i + 1)) {
                    (true, _) => vec![0.0; full.len()],
                    (false, Some(Some(without))) => full.iter().zip(without).map(|(p, q)| p - q).collect(),
                    (false, _) => Vec::new(),
                };
                WordWeight {
                    word: self.text[w.start..w.end].to_string(),
                    start: w.start,
                    end: w.end,
                    weights,
                    beyond_limit,
                }
            })
            .collect();
        Explanation {
            method: METHOD.to_string(),
            labels: labels.to_vec(),
            label: labels.get(best).cloned().unwrap_or_default(),
            scores: full,
            words,
        }
    }
}

impl Explanation {
    /// Every word has its weights (a part's explanation has only its own words').
    pub fn is_complete(&self) -> bool {
        self.words.iter().all(|w| w.weights.len() == self.labels.len())
    }
}

/// The parts of one explanation (`Occlusion::part`) as one: each word's weights from the part
/// that ran it. `None` when the parts are not of the same text and model.
pub fn merge(mut parts: Vec<Explanation>) -> Option<Explanation> {
    let mut whole = parts.pop()?;
    for p in parts {
        let same = p.labels == whole.labels
            && p.scores == whole.scores
            && p.words.len() == whole.words.len()
            && p.words.iter().zip(&whole.words).all(|(a, b)| (a.start, a.end) == (b.start, b.end));
        if !same {
            return None;
        }
        for (w, from) in whole.words.iter_mut().zip(p.words) {
            if w.weights.is_empty() {
                w.weights = from.weights;
            }
        }
    }
    Some(whole)
}

/// Explains one text with every batch run at once (the native path; the worker steps).
pub fn explain(encoder: &TextEncoder, classifier: &Classifier, text: &str) -> Result<Explanation, ExplainError> {
    let mut run = Occlusion::new(encoder, text)?;
    while !run.is_finished() {
        run.step(encoder, classifier)?;
    }
    Ok(run.finish(&classifier.config().labels))
}

/// How many of the words (from the first) the model reads before truncating the text: the
/// first word whose preceding text already fills the token limit, found by bisection (the
/// token count of a prefix grows with it).
fn words_read(encoder: &TextEncoder, text: &str, words: &[Word]) -> Result<usize, TokenizeError> {
    // Word i is cut when the text before it (up to the previous word's end, so without the
    // space that would tokenize on its own) already takes every token the model reads.
    let cut = |i: usize| -> Result<bool, TokenizeError> {
        Ok(i > 0 && encoder.encode(&text[..words[i - 1].end])?.len() >= encoder.max_tokens())
    };
    if words.is_empty() || !cut(words.len() - 1)? {
        return Ok(words.len());
    }
    let (mut lo, mut hi) = (0, words.len() - 1); // cut(lo) is false, cut(hi) is true
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if cut(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// Consecutive rows grouped so that each batch's padded size (rows × longest) stays within
/// `max_tokens`; a longer row runs alone.
fn token_bounded_batches(rows: &[Vec<u32>], max_tokens: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        let mut longest = rows[start].len();
        while end < rows.len() && (end - start + 1) * longest.max(rows[end].len()) <= max_tokens {
            longest = longest.max(rows[end].len());
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        let w = words(text);
        (0..w.len()).map(|i| delete_words(text, &w, |j| j == i)).collect()
    }

    #[test]
    fn words_are_whitespace_separated_runs() {
        let t = "  Great flight,\tbut\n😡 wifi!! ";
        let w: Vec<&str> = words(t).iter().map(|w| &t[w.start..w.end]).collect();
        assert_eq!(w, ["Great", "flight,", "but", "😡", "wifi!!"]);
        assert!(words(" \n ").is_empty());
    }

    #[test]
    fn deleting_a_word_takes_its_following_whitespace_and_keeps_the_ends() {
        assert_eq!(texts("I love it"), ["love it", "I it", "I love"]);
        assert_eq!(texts(" a\nb  c. "), [" b  c. ", " a\nc. ", " a\nb "]);
        let t = "one two three four";
        let w = words(t);
        assert_eq!(delete_words(t, &w, |i| i == 1 || i == 3), "one three");
        assert_eq!(delete_words(t, &w, |_| true), "");
        assert_eq!(delete_words(t, &w, |_| false), t);
        assert_eq!(delete_words("solo", &words("solo"), |_| true), "");
    }

    fn explanation(weights: &[&[f32]]) -> Explanation {
        Explanation {
            method: METHOD.into(),
            labels: vec!["a".into(), "b".into()],
            label: "a".into(),
            scores: vec![0.6, 0.4],
            words: weights
                .iter()
                .enumerate()
                .map(|(i, w)| WordWeight {
                    word: format!("w{i}"),
                    start: 3 * i,
                    end: 3 * i + 2,
                    weights: w.to_vec(),
                    beyond_limit: false,
                })
                .collect(),
        }
    }

    #[test]
    fn parts_merge_into_the_whole_and_only_parts_of_one_text_do() {
        let first = explanation(&[&[0.1, -0.1], &[], &[0.3, -0.3]]);
        let second = explanation(&[&[], &[0.2, -0.2], &[]]);
        assert!(!first.is_complete());
        let whole = merge(vec![first.clone(), second]).unwrap();
        assert!(whole.is_complete());
        assert_eq!(whole, explanation(&[&[0.1, -0.1], &[0.2, -0.2], &[0.3, -0.3]]));
        let mut other = explanation(&[&[], &[0.2, -0.2], &[]]);
        other.scores = vec![0.5, 0.5];
        assert_eq!(merge(vec![first, other]), None);
        assert_eq!(merge(vec![]), None);
    }

    #[test]
    fn batches_stay_within_the_token_budget() {
        let rows: Vec<Vec<u32>> = [30, 29, 31, 28, 30, 100, 200].iter().map(|&n| vec![0; n]).collect();
        let b = token_bounded_batches(&rows, 128);
        assert_eq!(b, [0..4, 4..5, 5..6, 6..7]);
        for r in &b {
            let longest = rows[r.clone()].iter().map(Vec::len).max().unwrap();
            assert!(r.len() == 1 || r.len() * longest <= 128);
        }
        assert!(token_bounded_batches(&[], 128).is_empty());
    }
}
