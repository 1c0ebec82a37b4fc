//! The model store's public files (docs/nightly-report.md), as `sentiment-trainer` writes them
//! and the page's monitor view reads them: `registry.json` ([`Registry`]), `reports/index.json`
//! ([`IndexEntry`]s, newest first) and what a reader may rely on in `reports/<stamp>.json`
//! ([`Report`]).
//!
//! Every type reads leniently: a missing field takes its default, an unknown field is ignored,
//! and a name this build does not know (a change kind, an outcome, a guard decision) is kept as
//! written, so a store written by an older or newer trainer still reads. The trainer checks what
//! it relies on (`format_version`, the champion among the versions) after reading.

/// An enum written as one of a few snake_case names that keeps a name this build does not know
/// (`Other`, as written) instead of refusing the whole file; `default` is what a missing field
/// reads as.
macro_rules! open_names {
    (
        $(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }
        default: $default:expr;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A name this build does not know, as written (empty when the field is missing).
            Other(String),
        }

        impl $name {
            #[inline]
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl Default for $name {
            #[inline]
            fn default() -> Self {
                $default
            }
        }

        impl From<String> for $name {
            #[inline]
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($text => $name::$variant,)*
                    _ => $name::Other(s),
                }
            }
        }

        impl From<$name> for String {
            #[inline]
            fn from(v: $name) -> Self {
                v.as_str().to_string()
            }
        }
    };
}

mod registry;
mod reports;

pub use registry::{CardSettings, ChampionChange, ChangeKind, Registry, VersionEntry};
pub use reports::{
    Evaluations, Figures, GateConfig, GateResult, GuardAgreement, GuardCheck, GuardDecision, IndexEntry,
    MonitorDecision, Outcome, Report, ReportConfig, DEFAULT_MIN_SAMPLES, DEFAULT_PSI_ALERT, DEFAULT_TOLERANCE,
};

pub const REGISTRY_FILE: &str = "registry.json";
pub const REGISTRY_FORMAT_VERSION: u32 = 1;
/// Where each nightly run's report goes, as `<stamp>.json`.
pub const REPORTS_DIR: &str = "reports";
/// The newest reports' summaries, newest first, so a static page need not list the folder.
pub const REPORT_INDEX_FILE: &str = "reports/index.json";
