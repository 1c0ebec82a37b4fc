//! Are the explanations faithful? Deleting the words an explanation (`model::explain`) ranks
//! highest for the predicted label must lower that label's probability clearly more than
//! deleting as many words at random.
//!
//! For each text: the predicted label `y` and its probability `p`; the words ranked by their
//! weight toward `y`; for k = 1..=K the text without its top-k words and, for each of R random
//! draws, without k words picked at random (the first k of a seeded shuffle). The drop at k is
//! `p − p(y | text without those words)`. The curves are the mean drops over the texts (the
//! random one also over the draws); the area over each perturbation curve (AOPC, Samek et al.
//! 2017) is the mean of its K drops, and the ratio of the two AOPCs is the figure the
//! explanations are judged by. A text with fewer than k words loses all of them at k.

use crate::train::batches::shuffle;
use crate::train::derive_seed;
use model::explain::{delete_words, words, Explanation};
use model::weights::SplitMix64;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Largest k (words deleted).
    pub max_k: usize,
    /// Random deletions per text and k.
    pub random_draws: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_k: 5, random_draws: 5, seed: 0 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub options: Options,
    /// Texts measured, and texts skipped for having no word.
    pub texts: usize,
    pub skipped: usize,
    /// Mean drop of the predicted label's probability at k = 1..=K: deleting the top-k words,
    /// and k random words.
    pub top: Vec<f64>,
    pub random: Vec<f64>,
    pub aopc_top: f64,
    pub aopc_random: f64,
    /// `aopc_top / aopc_random` (goal ≥ 2).
    pub ratio: f64,
}

/// The perturbed texts of one explained text: K top-k deletions, then R draws of K random ones.
fn perturbations(text: &str, ex: &Explanation, label: usize, opts: &Options, seed: u64) -> Vec<String> {
    let all = words(text);
    // Only words the model reads can be ranked; the rest weigh nothing either way.
    let read: Vec<usize> = (0..all.len()).filter(|&i| !ex.words[i].beyond_limit).collect();
    let mut ranked = read.clone();
    // Highest weight first; ties in text order (the sort is stable).
    ranked.sort_by(|&a, &b| ex.words[b].weights[label].total_cmp(&ex.words[a].weights[label]));
    let without = |chosen: &[usize]| delete_words(text, &all, |i| chosen.contains(&i));
    let mut out: Vec<String> = (1..=opts.max_k).map(|k| without(&ranked[..k.min(ranked.len())])).collect();
    let mut rng = SplitMix64(seed);
    for _ in 0..opts.random_draws {
        let mut order = read.clone();
        shuffle(&mut order, &mut rng);
        out.extend((1..=opts.max_k).map(|k| without(&order[..k.min(order.len())])));
    }
    out
}

/// Measures `texts`: `explain` explains one text, `probabilities` classifies many (each row in
/// the explanation's label order); `progress` gets the number of texts done.
pub fn evaluate<E>(
    texts: &[String],
    opts: &Options,
    mut explain: impl FnMut(&str) -> Result<Explanation, E>,
    mut probabilities: impl FnMut(&[String]) -> Result<Vec<Vec<f32>>, E>,
    mut progress: impl FnMut(usize),
) -> Result<Report, E> {
    let k = opts.max_k;
    let (mut top, mut random) = (vec![0.0; k], vec![0.0; k]);
    let (mut measured, mut skipped) = (0, 0);
    for (n, text) in texts.iter().enumerate() {
        let ex = explain(text)?;
        if ex.words.iter().all(|w| w.beyond_limit) {
            skipped += 1;
            progress(n + 1);
            continue;
        }
        let label = ex.labels.iter().position(|l| *l == ex.label).expect("the label is one of the labels");
        let p = ex.scores[label] as f64;
        let perturbed = perturbations(text, &ex, label, opts, derive_seed(opts.seed, 0xFA17, n as u64));
        let probs = probabilities(&perturbed)?;
        for (j, row) in probs.iter().enumerate() {
            let drop = p - row[label] as f64;
            match j < k {
                true => top[j] += drop,
                false => random[(j - k) % k] += drop / opts.random_draws as f64,
            }
        }
        measured += 1;
        progress(n + 1);
    }
    let mean = |xs: &mut Vec<f64>| xs.iter_mut().for_each(|x| *x /= measured.max(1) as f64);
    mean(&mut top);
    mean(&mut random);
    let aopc = |xs: &[f64]| xs.iter().sum::<f64>() / k.max(1) as f64;
    let (aopc_top, aopc_random) = (aopc(&top), aopc(&random));
    Ok(Report {
        options: opts.clone(),
        texts: measured,
        skipped,
        top,
        random,
        aopc_top,
        aopc_random,
        ratio: aopc_top / aopc_random,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::explain::WordWeight;

    /// A "model" whose positive probability is the share of the words "good" it still sees
    /// (0.5 without any), and an explanation that ranks by that rule — or the opposite.
    fn p_positive(text: &str) -> f32 {
        let w = words(text);
        let good = w.iter().filter(|x| &text[x.start..x.end] == "good").count();
        (0.5 + 0.1 * good as f32).min(1.0)
    }

    fn explanation(text: &str, faithful: bool) -> Explanation {
        let p = p_positive(text);
        Explanation {
            method: "occlusion".into(),
            labels: vec!["negative".into(), "positive".into()],
            label: "positive".into(),
            scores: vec![1.0 - p, p],
            words: words(text)
                .iter()
                .map(|w| {
                    let good = &text[w.start..w.end] == "good";
                    let weight = if good == faithful { 0.1 } else { 0.0 };
                    WordWeight {
                        word: text[w.start..w.end].into(),
                        start: w.start,
                        end: w.end,
                        weights: vec![-weight, weight],
                        beyond_limit: false,
                    }
                })
                .collect(),
        }
    }

    fn run(faithful: bool) -> Report {
        let texts: Vec<String> =
            (0..20).map(|i| format!("the good film {} was good and long and good", "x ".repeat(i % 4))).collect();
        let probs = |ts: &[String]| -> Result<Vec<Vec<f32>>, ()> {
            Ok(ts.iter().map(|t| vec![1.0 - p_positive(t), p_positive(t)]).collect())
        };
        evaluate(&texts, &Options::default(), |t| Ok(explanation(t, faithful)), probs, |_| {}).unwrap()
    }

    #[test]
    fn a_faithful_ranking_beats_random_deletion_and_an_unfaithful_one_does_not() {
        let good = run(true);
        assert_eq!((good.texts, good.skipped, good.top.len()), (20, 0, 5));
        // The top three words are the three "good"s: the drop grows by 0.1 each, then stays.
        for (k, want) in [0.1, 0.2, 0.3, 0.3, 0.3].iter().enumerate() {
            assert!((good.top[k] - want).abs() < 1e-6, "k={}: {}", k + 1, good.top[k]);
        }
        assert!(good.ratio > 2.0, "ratio {}", good.ratio);
        let bad = run(false);
        assert!(bad.aopc_top < 1e-6, "ranking the other words first deletes no good: {}", bad.aopc_top);
        assert!(bad.ratio < 0.1);
        // Random deletions do not depend on the ranking.
        assert_eq!(good.random, bad.random);
    }
}
