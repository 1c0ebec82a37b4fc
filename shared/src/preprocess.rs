//! Text preprocessing applied before tokenizing, identical in the browser and natively.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// How raw text is rewritten before it reaches the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// The text goes to the tokenizer unchanged.
    None,
    /// The model card of `cardiffnlp/twitter-roberta-base-sentiment-latest`: every
    /// space-separated token starting with `@` (and longer than `@`) becomes `@user`, every
    /// token starting with `http` becomes `http`. Splits on single spaces only, like the card.
    #[default]
    Cardiffnlp,
}

impl Preprocess {
    pub fn apply<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self {
            Preprocess::None => Cow::Borrowed(text),
            Preprocess::Cardiffnlp => cardiffnlp(text),
        }
    }
}

fn cardiffnlp(text: &str) -> Cow<'_, str> {
    let rewrite = |t: &str| -> Option<&'static str> {
        if t.starts_with('@') && t.len() > 1 {
            Some("@user")
        } else if t.starts_with("http") {
            Some("http")
        } else {
            None
        }
    };
    if text.split(' ').all(|t| rewrite(t).is_none()) {
        return Cow::Borrowed(text);
    }
    let parts: Vec<&str> = text.split(' ').map(|t| rewrite(t).unwrap_or(t)).collect();
    Cow::Owned(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_model_card() {
        let p = Preprocess::Cardiffnlp;
        assert_eq!(p.apply("@news_bot: look https://t.co/x?a=1 now"), "@user look http now");
        assert_eq!(p.apply("@ alone"), "@ alone");
        // Only single spaces split: the second mention after a newline stays.
        assert_eq!(p.apply("@a\n@b"), "@user");
        assert_eq!(p.apply("hi  @x"), "hi  @user");
        assert_eq!(p.apply("httpfoo"), "http");
        assert_eq!(Preprocess::None.apply("@a http://x"), "@a http://x");
    }
}
