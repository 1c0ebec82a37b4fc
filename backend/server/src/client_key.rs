//! Pseudonymous client keys: each stored record carries `client`, 16 hex digits of
//! HMAC-SHA256(secret, the client's address as [`crate::http::client_key_source`] finds it), so
//! the trainer can count votes per client without the address ever being stored. Without the
//! secret a key cannot be turned back into an address (IPv4 has only 2^32 of them: a plain hash
//! could be reversed by trying each).
//!
//! The secret comes from `SENTIMENT_CLIENT_KEY_SECRET` (a Space secret, the same on every
//! replica so that they agree on a client's key), else from `DATA_DIR/client-key-secret`, made
//! once at random (readable by the owner only, fsync'd) and kept: then another replica, or this
//! one after its data dir is reset, gives the same client another key. The secret is never
//! logged and never served.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable holding the secret.
pub const SECRET_ENV: &str = "SENTIMENT_CLIENT_KEY_SECRET";
/// The file in the data dir holding the secret when the environment has none.
pub const SECRET_FILE: &str = "client-key-secret";
/// Shortest secret accepted from the environment, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// Turns what identifies a client into its pseudonymous key.
#[derive(Clone)]
pub struct ClientKeys {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKeys(secret hidden)")
    }
}

impl Default for ClientKeys {
    /// Keys under a random secret that lives as long as the process (tests, examples).
    fn default() -> Self {
        ClientKeys::new(&rand::random::<[u8; 32]>())
    }
}

/// Where the secret came from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    Environment,
    /// `DATA_DIR/client-key-secret`; `created` when this start made it.
    DataDir {
        path: PathBuf,
        created: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientKeyError {
    #[error("{SECRET_ENV} has {0} bytes; use at least {MIN_SECRET_BYTES} random ones (e.g. `openssl rand -hex 32`)")]
    TooShort(usize),
    #[error(
        "{} does not hold a client-key secret (64 hex digits); restore it, or delete it to start \
         new client keys (then every client gets a new key)",
        .0.display()
    )]
    BadFile(PathBuf),
    #[error("{action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

impl ClientKeys {
    pub fn new(secret: &[u8]) -> ClientKeys {
        ClientKeys { mac: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length") }
    }

    /// The secret from `env` (the value of [`SECRET_ENV`], if set and not empty), else from the
    /// data dir's file, created on first use.
    pub fn load(data_dir: &Path, env: Option<&str>) -> Result<(ClientKeys, SecretSource), ClientKeyError> {
        if let Some(secret) = env.filter(|s| !s.is_empty()) {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ClientKeyError::TooShort(secret.len()));
            }
            return Ok((ClientKeys::new(secret.as_bytes()), SecretSource::Environment));
        }
        let path = data_dir.join(SECRET_FILE);
        let io = |action, e| ClientKeyError::Io { action, path: path.clone(), source: e };
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                let secret = hex::decode(s.trim())
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or(ClientKeyError::BadFile(path.clone()))?;
                Ok((ClientKeys::new(&secret), SecretSource::DataDir { path, created: false }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = rand::random::<[u8; 32]>();
                write_secret(&path, &hex::encode(secret)).map_err(|e| io("writing", e))?;
                Ok((ClientKeys::new(&secret), SecretSource::DataDir { path, created: true }))
            }
            Err(e) => Err(io("reading", e)),
        }
    }

    /// The key of the client `source` identifies: the first 8 bytes of the HMAC, in hex.
    pub fn key(&self, source: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(source.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

/// Writes `content` to `path` readable by the owner only, durably: a temporary file, fsync'd,
/// renamed into place, then the directory fsync'd.
fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in the data dir");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_first_8_bytes_of_hmac_sha256() {
        // RFC 4231, test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") =
        // 5bdcc146bf60754e6a042426089575c7 5a003f089d2739839dec58b964ec3843.
        assert_eq!(ClientKeys::new(b"Jefe").key("what do ya want for nothing?"), "5bdcc146bf60754e");
        let k = ClientKeys::new(b"0123456789abcdef");
        assert_eq!(k.key("203.0.113.7"), k.key("203.0.113.7"));
        assert_ne!(k.key("203.0.113.7"), k.key("203.0.113.8"));
        assert_ne!(k.key("203.0.113.7"), ClientKeys::new(b"another secret!!").key("203.0.113.7"));
        assert!(!format!("{k:?}").contains("0123"), "the secret is never printed");
    }

    #[test]
    fn the_secret_comes_from_the_environment_or_a_private_file_kept_in_the_data_dir() {
        let dir = std::env::temp_dir().join(format!("sentiment-client-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, src) = ClientKeys::load(&dir, None).unwrap();
        assert_eq!(src, SecretSource::DataDir { path: dir.join(SECRET_FILE), created: true });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SECRET_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (b, src) = ClientKeys::load(&dir, Some("")).unwrap();
        assert!(matches!(src, SecretSource::DataDir { created: false, .. }));
        assert_eq!(a.key("198.51.100.1"), b.key("198.51.100.1"), "kept across restarts");

        let (e, src) = ClientKeys::load(&dir, Some("a shared Space secret")).unwrap();
        assert_eq!(src, SecretSource::Environment);
        assert_eq!(e.key("x"), ClientKeys::new(b"a shared Space secret").key("x"));
        assert!(matches!(ClientKeys::load(&dir, Some("short")), Err(ClientKeyError::TooShort(5))));

        std::fs::write(dir.join(SECRET_FILE), "not hex").unwrap();
        let err = ClientKeys::load(&dir, None).unwrap_err().to_string();
        assert!(err.contains("client-key-secret") && err.contains("64 hex"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
