//! Word attributions (`model::explain`) on a real (tiny) model: each weight is the documented
//! difference of probabilities, computed here independently, one unpadded text at a time; words
//! past the token limit are the ones the model never reads.

mod common;

use common::fixture;
use model::explain::{delete_words, explain, merge, words, Explanation, Occlusion};
use sentiment_trainer::predict::Predictor;
use shared::Preprocess;

fn predictor() -> Predictor {
    Predictor::open(&fixture("tiny-roberta-bpe"), Preprocess::Cardiffnlp).unwrap()
}

/// The label's probability for one text, in a batch of its own.
fn probability(p: &Predictor, text: &str, label: &str) -> f32 {
    p.predict_batch(&[text]).unwrap()[0].scores[label]
}

/// Every batch of `run`, stepped as the browser worker steps them.
fn run_to_end(p: &Predictor, mut run: Occlusion) -> Explanation {
    while !run.is_finished() {
        run.step(&p.encoder, &p.classifier).unwrap();
    }
    run.finish(p.labels())
}

#[test]
fn each_weight_is_the_drop_of_each_labels_probability_when_the_word_is_deleted() {
    common::kernels_as_the_trainer_runs_them();
    let p = predictor();
    let text = "@acme the new app is great, but support never answers 😡 https://t.co/x";
    let ex = explain(&p.encoder, &p.classifier, text).unwrap();
    assert_eq!(ex.method, "occlusion");
    assert_eq!(ex.labels, p.labels());
    let full = p.predict_batch(&[text]).unwrap().remove(0);
    assert_eq!(ex.label, full.label);
    let w = words(text);
    assert_eq!(ex.words.len(), w.len());
    let mut largest = 0f32;
    for (i, (word, span)) in ex.words.iter().zip(&w).enumerate() {
        assert_eq!((word.start, word.end, word.word.as_str()), (span.start, span.end, &text[span.start..span.end]));
        assert!(!word.beyond_limit);
        let without = delete_words(text, &w, |j| j == i);
        for (l, label) in ex.labels.iter().enumerate() {
            let want = full.scores[label] - probability(&p, &without, label);
            assert!(
                (word.weights[l] - want).abs() < 1e-5,
                "word {i} ({}) toward {label}: {} vs {want}",
                word.word,
                word.weights[l]
            );
            largest = largest.max(want.abs());
        }
    }
    // Not all zero: the words do move this model's scores.
    assert!(largest > 1e-3, "largest weight {largest}");
}

#[test]
fn words_past_the_token_limit_are_not_run() {
    common::kernels_as_the_trainer_runs_them();
    let p = predictor();
    // Far more words than the model's 512 tokens.
    let text: String = (0..700).map(|i| format!("w{}", i % 50)).collect::<Vec<_>>().join(" ");
    let ex = explain(&p.encoder, &p.classifier, &text).unwrap();
    let w = words(&text);
    let read = ex.words.iter().take_while(|x| !x.beyond_limit).count();
    assert!(read > 100 && read < w.len(), "{read} of {} words read", w.len());
    assert!(ex.words[read..].iter().all(|x| x.beyond_limit && x.weights.iter().all(|&v| v == 0.0)));
    // The first word not read changes nothing the model sees; the last word read does.
    let ids = |t: &str| p.encoder.encode(t).unwrap();
    assert_eq!(ids(&delete_words(&text, &w, |j| j == read)), ids(&text));
    assert_ne!(ids(&delete_words(&text, &w, |j| j == read - 1)), ids(&text));
    assert_eq!(ids(&text).len(), p.encoder.max_tokens());
}

#[test]
fn two_parts_merged_give_exactly_the_whole() {
    common::kernels_as_the_trainer_runs_them();
    let p = predictor();
    let text = "the crew at the gate was great but the wifi on board never works, again and again";
    let whole = explain(&p.encoder, &p.classifier, text).unwrap();
    let parts: Vec<_> = (0..2)
        .map(|part| {
            let ex = run_to_end(&p, Occlusion::part(&p.encoder, text, part, 2).unwrap());
            assert!(!ex.is_complete(), "a part runs only its share");
            ex
        })
        .collect();
    assert_eq!(merge(parts).unwrap(), whole);
}

/// The browser worker reuses its last prediction's probabilities for the text's own row: the
/// explanation is exactly the one that runs it, with one row fewer, and with two parts the one
/// that reuses them runs no more rows than the other.
#[test]
fn reusing_the_prediction_of_the_text_changes_nothing_but_the_rows_run() {
    common::kernels_as_the_trainer_runs_them();
    let p = predictor();
    let text = "the crew at the gate was great but the wifi on board never works, again and again";
    let whole = explain(&p.encoder, &p.classifier, text).unwrap();
    let predicted = p.predict_batch(&[text]).unwrap().remove(0);
    let probs: Vec<f32> = p.labels().iter().map(|l| predicted.scores[l]).collect();

    let mut alone = Occlusion::new(&p.encoder, text).unwrap();
    let rows = alone.rows();
    alone.reuse_text_probs(probs.clone());
    assert_eq!(alone.rows(), rows - 1);
    assert_eq!(run_to_end(&p, alone), whole);

    let mut first = Occlusion::part(&p.encoder, text, 0, 2).unwrap();
    let second = Occlusion::part(&p.encoder, text, 1, 2).unwrap();
    first.reuse_text_probs(probs);
    assert!(first.rows() <= second.rows(), "{} rows and {}", first.rows(), second.rows());
    assert_eq!(merge(vec![run_to_end(&p, first), run_to_end(&p, second)]).unwrap(), whole);
}
