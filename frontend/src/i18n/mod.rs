//! The page's words in English and Italian: one catalogue, every string the page shows.
//!
//! Each message is one variant of [`Msg`] with its English and Italian text side by side (in
//! `catalogue.rs`), so a message cannot exist in one language only. Texts with values name them
//! in braces (`{done} of {total}`), filled by [`fill`]; both languages must name the same ones
//! (tested). The language comes from the browser's preferred languages, unless the user picked
//! one with the switch in the header (kept in local storage).

use std::borrow::Cow;
use std::collections::BTreeSet;

mod catalogue;
pub use catalogue::Msg;

/// Where the user's choice of language is kept.
pub const STORAGE_KEY: &str = "sentiment-monitor.lang.v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    It,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::It];

    /// The BCP 47 code, as `<html lang>` takes it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::It => "Italiano",
        }
    }

    /// `it`, `it-IT`, `IT_ch`… → Italian; any English tag → English; others `None`.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The first of the browser's preferred languages that the page has, else English.
    pub fn pick<S: AsRef<str>>(preferred: &[S]) -> Lang {
        preferred.iter().find_map(|t| Lang::from_tag(t.as_ref())).unwrap_or(Lang::En)
    }

    /// A number with `decimals` decimals and the language's decimal separator.
    pub fn decimal(self, x: f64, decimals: usize) -> String {
        let s = format!("{x:.decimals$}");
        match self {
            Lang::En => s,
            Lang::It => s.replace('.', ","),
        }
    }

    /// A share in percent, e.g. `38.5%` / `38,5%`.
    pub fn percent(self, share: f64, decimals: usize) -> String {
        format!("{}%", self.decimal(share * 100.0, decimals))
    }

    /// A model label as the page shows it: the usual sentiment labels translated, any other
    /// label as the model names it.
    pub fn label(self, label: &str) -> Cow<'_, str> {
        let msg = match label {
            "negative" => Msg::LabelNegative,
            "neutral" => Msg::LabelNeutral,
            "positive" => Msg::LabelPositive,
            _ => return Cow::Owned(label.to_string()),
        };
        Cow::Borrowed(msg.text(self))
    }
}

impl Msg {
    /// The text with its `{name}` placeholders replaced by `args`.
    pub fn fill(self, lang: Lang, args: &[(&str, &str)]) -> String {
        fill(self.text(lang), args)
    }
}

/// Replaces each `{name}` in `template` by its value in `args` (unknown names stay as they are).
pub fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((name, close)) if args.iter().any(|(n, _)| *n == name) => {
                out.push_str(args.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or_default());
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{name}` placeholders of a template.
pub fn placeholders(template: &str) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.insert(&after[..close]);
        rest = &after[close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_exists_in_both_languages_with_the_same_placeholders() {
        for &m in Msg::ALL {
            let (en, it) = (m.text(Lang::En), m.text(Lang::It));
            assert!(!en.trim().is_empty() && !it.trim().is_empty(), "{m:?} is empty in a language");
            assert_eq!(placeholders(en), placeholders(it), "{m:?}: placeholders differ");
        }
    }

    #[test]
    fn the_language_follows_the_browser_unless_it_is_unknown() {
        assert_eq!(Lang::pick(&["it-IT", "en-US"]), Lang::It);
        assert_eq!(Lang::pick(&["de-DE", "it"]), Lang::It);
        assert_eq!(Lang::pick(&["de-DE", "fr"]), Lang::En);
        assert_eq!(Lang::pick::<&str>(&[]), Lang::En);
        assert_eq!(Lang::from_tag("IT_ch"), Some(Lang::It));
        assert_eq!(Lang::from_tag("english"), None);
    }

    #[test]
    fn templates_fill_and_numbers_follow_the_language() {
        assert_eq!(fill("{done} of {total} reviewed", &[("done", "38"), ("total", "120")]), "38 of 120 reviewed");
        assert_eq!(fill("{a} {unknown} {", &[("a", "x")]), "x {unknown} {");
        assert_eq!(placeholders("{a} and {b}").into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(Lang::It.decimal(0.4126, 3), "0,413");
        assert_eq!(Lang::En.percent(0.385, 1), "38.5%");
        assert_eq!(Lang::It.label("negative"), "negativo");
        assert_eq!(Lang::It.label("sarcasm"), "sarcasm");
    }
}
