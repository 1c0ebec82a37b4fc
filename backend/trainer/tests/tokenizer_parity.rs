//! Token ids identical to transformers' RoBERTa tokenizer built from the production model's
//! `vocab.json` + `merges.txt`: all 2000 TweetEval validation tweets and the edge cases (emoji,
//! accented Italian, URLs, empty text, truncation at 512 of a ~3000-token text), directly and
//! through the `tokenizer.json` a bundle ships.

mod common;

use common::*;
use model::tokenize::TextEncoder;
use sentiment_trainer::checkpoint::load_encoder;
use serde::Deserialize;
use shared::config::ModelConfig;
use shared::Preprocess;

#[derive(Deserialize)]
struct Golden {
    text: String,
    input_ids: Vec<u32>,
}

fn goldens(name: &str) -> Vec<Golden> {
    std::fs::read_to_string(fixture(&format!("tokens/{name}")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn production_config() -> ModelConfig {
    // The tiny fixture has the production model's tokenizer-relevant settings (514 positions, pad 1).
    ModelConfig::from_hf_json(&std::fs::read(fixture("tiny-roberta-sentiment/config.json")).unwrap(), None).unwrap()
}

fn encoders() -> Vec<(&'static str, TextEncoder)> {
    let dir = team_share("data/roberta-base-tokenizer");
    let config = production_config();
    let direct = load_encoder(&dir, &config, Preprocess::None).unwrap();
    // What the browser gets: the serialized tokenizer.json, loaded back.
    let json = direct.to_json().unwrap();
    let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
    let reloaded = TextEncoder::new(tok, &config, Preprocess::None).unwrap();
    vec![("vocab.json+merges.txt", direct), ("tokenizer.json", reloaded)]
}

#[test]
#[cfg_attr(no_team_share, ignore = "needs the team share ../shared beside the repository (absent here)")]
fn tweeteval_validation_ids_are_identical() {
    let encoders = encoders();
    let gold = goldens("tweeteval-val.jsonl");
    let texts: Vec<String> = std::fs::read_to_string(team_share("data/tweeteval-sentiment/val_text.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(gold.len(), 2000);
    assert_eq!(texts.len(), 2000);
    for (how, enc) in &encoders {
        for (i, (g, text)) in gold.iter().zip(&texts).enumerate() {
            assert_eq!(&g.text, text, "line {i}: golden text differs from the share");
            assert_eq!(enc.encode(text).unwrap(), g.input_ids, "{how}: line {}: {text:?}", i + 1);
        }
    }
}

#[test]
#[cfg_attr(no_team_share, ignore = "needs the team share ../shared beside the repository (absent here)")]
fn edge_cases_ids_are_identical_raw_and_preprocessed() {
    let encoders = encoders();
    let raw_texts: Vec<String> =
        std::fs::read_to_string(fixture("tokens/edge-cases.txt")).unwrap().split('\n').map(str::to_string).collect();
    let raw = goldens("edge-cases.jsonl");
    let pre = goldens("edge-cases-pre.jsonl");
    assert!(raw.iter().any(|g| g.input_ids.len() == 512), "the set includes a truncated text");
    assert!(raw.iter().any(|g| g.text.is_empty() && g.input_ids == [0, 2]), "the set includes the empty text");
    for (how, enc) in &encoders {
        for (i, g) in raw.iter().enumerate() {
            assert_eq!(g.text, raw_texts[i]);
            assert_eq!(enc.encode(&g.text).unwrap(), g.input_ids, "{how}: raw case {i}: {:?}", g.text);
        }
        for (i, g) in pre.iter().enumerate() {
            assert_eq!(Preprocess::Cardiffnlp.apply(&raw_texts[i]), g.text, "preprocessing of case {i}");
            assert_eq!(enc.encode(&g.text).unwrap(), g.input_ids, "{how}: preprocessed case {i}");
        }
    }
}
