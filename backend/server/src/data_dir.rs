//! Whether the data dir survives a restart of the container it is in.
//!
//! A Space's (or any container's) own disk is wiped on every restart; a Space's persistent
//! storage mounts at `/data`. Records that are acknowledged but not yet in the Hub dataset live
//! only in the data dir, so the server must say so when that dir is ephemeral while sync is off
//! or behind. How it decides, in order:
//! 1. `SENTIMENT_DATA_PERSISTENT=true|false` (the operator knows best);
//! 2. otherwise the file system the data dir is on (Linux `statfs`): `tmpfs`/`ramfs` (memory)
//!    and `overlay`/`aufs` (a container's writable layer) are ephemeral; a mounted volume or a
//!    host's disk (ext4, xfs, btrfs, NFS, FUSE, ...) is persistent.

use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Persistence {
    Persistent { how: String },
    Ephemeral { how: String },
}

impl Persistence {
    /// How it was decided, for logs and `/healthz/details`.
    pub fn describe(&self) -> &str {
        match self {
            Persistence::Persistent { how } | Persistence::Ephemeral { how } => how,
        }
    }
}

/// Decides for `dir` (which must exist); `declared` is `SENTIMENT_DATA_PERSISTENT`.
pub fn detect(dir: &Path, declared: Option<bool>) -> Persistence {
    match declared {
        Some(true) => return Persistence::Persistent { how: "declared persistent (SENTIMENT_DATA_PERSISTENT)".into() },
        Some(false) => return Persistence::Ephemeral { how: "declared ephemeral (SENTIMENT_DATA_PERSISTENT)".into() },
        None => {}
    }
    match fs_type(dir) {
        Some(t) => classify(t),
        None => Persistence::Persistent { how: "file system not checked on this OS".into() },
    }
}

fn classify(magic: i64) -> Persistence {
    let name = match magic {
        0x0102_1994 => "tmpfs",
        0x8584_58f6 => "ramfs",
        0x794c_7630 => "overlay",
        0x6175_6673 => "aufs",
        0xef53 => "ext2/3/4",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x0102_1997 => "9p",
        _ => "",
    };
    let how = if name.is_empty() { format!("file system 0x{magic:x}") } else { format!("file system {name}") };
    match name {
        "tmpfs" | "ramfs" => Persistence::Ephemeral { how: format!("{how}: memory") },
        "overlay" | "aufs" => Persistence::Ephemeral { how: format!("{how}: the container's own layer") },
        _ => Persistence::Persistent { how },
    }
}

#[cfg(target_os = "linux")]
fn fs_type(dir: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right size; statfs initializes it when it returns 0.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statfs returned 0, so it filled `st`.
    #[allow(clippy::unnecessary_cast)]
    Some(unsafe { st.assume_init() }.f_type as i64)
}

#[cfg(not(target_os = "linux"))]
fn fs_type(_dir: &Path) -> Option<i64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_and_overlay_are_ephemeral_volumes_are_not() {
        assert!(matches!(classify(0x0102_1994), Persistence::Ephemeral { .. }));
        assert!(matches!(classify(0x794c_7630), Persistence::Ephemeral { .. }));
        assert!(matches!(classify(0xef53), Persistence::Persistent { .. }));
        assert!(matches!(detect(Path::new("/"), Some(false)), Persistence::Ephemeral { .. }));
        // /dev/shm is tmpfs on Linux.
        #[cfg(target_os = "linux")]
        if Path::new("/dev/shm").is_dir() {
            assert!(matches!(detect(Path::new("/dev/shm"), None), Persistence::Ephemeral { .. }));
        }
    }
}
