//! The Hub client's settings, read from the environment the way the official client reads them,
//! so a machine set up for `huggingface_hub` (`hf auth login`, `HF_ENDPOINT`, `HF_HOME`) works
//! as it is.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Longest an API call may take; for file transfers, longest wait to connect or for the next
/// bytes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The variable that sets [`HubConfig::timeout`] (e.g. `30s`, `5m`).
pub const TIMEOUT_VAR: &str = "SENTIMENT_HUB_TIMEOUT";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{TIMEOUT_VAR}={value:?} is not a duration like 30s, 5m or 1h: {reason}")]
    Timeout { value: String, reason: String },
    #[error("cannot read the saved Hub token {}: {source}", path.display())]
    TokenFile { path: PathBuf, source: std::io::Error },
}

/// Where the token came from: said in messages, so a user can tell which login a command used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token: public repos can be read, nothing can be written.
    None,
    /// The `HF_TOKEN` variable.
    Env,
    /// The file `hf auth login` (or `huggingface-cli login`) saved.
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::None => f.write_str("no token (set HF_TOKEN or run `hf auth login`)"),
            TokenSource::Env => f.write_str("the token in HF_TOKEN"),
            TokenSource::File(p) => write!(f, "the token saved by `hf auth login` ({})", p.display()),
        }
    }
}

/// How to reach the Hub.
#[derive(Clone)]
pub struct HubConfig {
    /// `https://huggingface.co` or a mirror / stand-in (`HF_ENDPOINT`).
    pub endpoint: String,
    pub token: Option<String>,
    pub token_source: TokenSource,
    /// Bounds each API call; for file contents, connecting and each wait for the next bytes
    /// (not a whole transfer).
    pub timeout: Duration,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token_source", &self.token_source)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HubConfig {
    /// `endpoint`, no token, the default timeout.
    pub fn new(endpoint: &str) -> Self {
        HubConfig {
            endpoint: endpoint.to_owned(),
            token: None,
            token_source: TokenSource::None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// From the environment, as `huggingface_hub` reads it:
    /// - endpoint: `HF_ENDPOINT`, else `https://huggingface.co`;
    /// - token: `HF_TOKEN`, else the file `hf auth login` / `huggingface-cli login` saved:
    ///   `HF_TOKEN_PATH`, else `$HF_HOME/token` (`HF_HOME` defaults to
    ///   `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`);
    /// - timeout: `SENTIMENT_HUB_TIMEOUT` (default 60 s).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`from_env`](Self::from_env) over any variable lookup (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let timeout = match var(TIMEOUT_VAR) {
            Some(v) => humantime::parse_duration(v.trim())
                .map_err(|e| ConfigError::Timeout { value: v.clone(), reason: e.to_string() })?,
            None => DEFAULT_TIMEOUT,
        };
        let (token, token_source) = match var("HF_TOKEN") {
            Some(t) => (Some(t.trim().to_owned()), TokenSource::Env),
            None => {
                let path = var("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| hf_home(&var).join("token"));
                match read_token_file(&path)? {
                    Some(t) => (Some(t), TokenSource::File(path)),
                    None => (None, TokenSource::None),
                }
            }
        };
        Ok(HubConfig { endpoint, token, token_source, timeout })
    }
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub(crate) fn hf_home(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(h) = var("HF_HOME") {
        return PathBuf::from(h);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(var("HOME").unwrap_or_else(|| ".".to_owned())).join(".cache"));
    cache.join("huggingface")
}

fn read_token_file(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::TokenFile { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<HubConfig, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubConfig::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn token_from_the_variable_then_the_saved_login() {
        let dir = std::env::temp_dir().join(format!("hub-config-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::write(dir.join("home/token"), "hf_saved\n").unwrap();
        std::fs::write(dir.join("elsewhere"), "hf_path").unwrap();
        let home = dir.join("home");
        let home = home.to_str().unwrap();

        let c = config(&[("HF_TOKEN", "hf_env"), ("HF_HOME", home)]).unwrap();
        assert_eq!((c.token.as_deref(), &c.token_source), (Some("hf_env"), &TokenSource::Env));

        let c = config(&[("HF_HOME", home)]).unwrap();
        assert_eq!(c.token.as_deref(), Some("hf_saved"));
        assert_eq!(c.token_source, TokenSource::File(dir.join("home/token")));

        let path = dir.join("elsewhere");
        let c = config(&[("HF_HOME", home), ("HF_TOKEN_PATH", path.to_str().unwrap())]).unwrap();
        assert_eq!(c.token.as_deref(), Some("hf_path"));

        let xdg = dir.to_str().unwrap();
        std::fs::create_dir_all(dir.join("huggingface")).unwrap();
        std::fs::write(dir.join("huggingface/token"), "hf_xdg").unwrap();
        let c = config(&[("XDG_CACHE_HOME", xdg)]).unwrap();
        assert_eq!(c.token.as_deref(), Some("hf_xdg"));

        let c = config(&[("HOME", "/nonexistent-home")]).unwrap();
        assert_eq!((c.token, c.token_source), (None, TokenSource::None));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn endpoint_and_timeout() {
        let c =
            config(&[("HF_ENDPOINT", "http://127.0.0.1:9"), (TIMEOUT_VAR, "90s"), ("HOME", "/nonexistent")]).unwrap();
        assert_eq!((c.endpoint.as_str(), c.timeout), ("http://127.0.0.1:9", Duration::from_secs(90)));
        let e = config(&[(TIMEOUT_VAR, "soon")]).unwrap_err();
        assert!(e.to_string().contains("SENTIMENT_HUB_TIMEOUT"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = HubConfig { token: Some("hf_secret".into()), ..HubConfig::new("http://h") };
        assert!(!format!("{c:?}").contains("hf_secret"));
    }
}
