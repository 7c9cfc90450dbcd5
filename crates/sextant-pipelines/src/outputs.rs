//! Step outputs as content-addressed directories.
//!
//! When a step succeeds, each of its output directories is described by a
//! [`Manifest`]: every file's relative path, size and SHA-256, sorted by path.
//! The manifest's own hash is the output's digest, so two outputs with the
//! same files and bytes have the same digest wherever and whenever they were
//! made. The orchestrator stores each output once under its digest in the
//! artifact store (see [`object_dir`]), records the digest in the step's
//! result, and hashes digests (not paths) into cache keys; a consumer on
//! another host, or a later run reusing a cached step, downloads the output by
//! its digest.
//!
//! This module only reads local files; storing and fetching belong to the
//! orchestrator and the worker.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The artifact-store directory holding every published output, by digest.
pub const STORE_DIR: &str = "pipeline-outputs/sha256";

/// One file of an output directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the output directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

/// What an output directory holds, in path order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `sha256:<hex>` of the canonical listing of `files`.
    pub digest: String,
    /// Every regular file, sorted by path.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The manifest of a list of files (sorted here), with its digest.
    pub fn new(mut files: Vec<FileEntry>) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut h = Sha256::new();
        for f in &files {
            // One line per file; a path cannot hold a newline (see `of_dir`).
            h.update(format!("{} {} {}\n", f.sha256, f.size, f.path).as_bytes());
        }
        Manifest {
            digest: format!("sha256:{}", hex(&h.finalize())),
            files,
        }
    }

    /// The total size of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The hex part of the digest, as used in storage paths.
    pub fn hex(&self) -> &str {
        digest_hex(&self.digest).unwrap_or_default()
    }
}

/// The hex part of a `sha256:<hex>` digest, if it is one.
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(hex)
}

/// Where an output with this digest is stored, relative to the artifact root:
/// its files under `<STORE_DIR>/<hex>/`, its manifest (written last, so its
/// presence means the files are all there) at `<STORE_DIR>/<hex>.json`.
pub fn object_dir(digest: &str) -> Option<(String, String)> {
    let hex = digest_hex(digest)?;
    Some((
        format!("{STORE_DIR}/{hex}"),
        format!("{STORE_DIR}/{hex}.json"),
    ))
}

/// Why an output directory (or a file a cache key names) could not be described.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Reading the directory or a file failed.
    #[error("cannot read output {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The IO failure.
        #[source]
        source: std::io::Error,
    },
    /// A file name cannot be stored (not UTF-8, or holds a newline or backslash).
    #[error(
        "output file {0} has a name that cannot be stored (it must be UTF-8 without newlines or backslashes)"
    )]
    BadName(PathBuf),
    /// Reading a single file (one a step's cache key names) failed.
    #[error("reading {}: {source}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The IO failure.
        #[source]
        source: std::io::Error,
    },
}

/// Describes every regular file under `dir` (following symbolic links to
/// files; a missing directory is empty). Reads each file once: call it off
/// the async runtime.
pub fn of_dir(dir: &Path) -> Result<Manifest, OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    let mut files = Vec::new();
    if !dir.exists() {
        return Ok(Manifest::new(files));
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let path = entry.map_err(io(&d))?.path();
            let meta = std::fs::metadata(&path).map_err(io(&path))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let name = rel
                .to_str()
                .filter(|s| !s.contains(['\n', '\r', '\\']))
                .ok_or_else(|| OutputError::BadName(path.clone()))?
                .to_string();
            let (size, sha256) = hash_file(&path).map_err(io(&path))?;
            files.push(FileEntry {
                path: name,
                size,
                sha256,
            });
        }
    }
    Ok(Manifest::new(files))
}

/// The size and SHA-256 (hex) of a file, read in chunks.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, hex(&h.finalize())))
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_contents_and_names_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("x.txt"), "hello").unwrap();
            std::fs::write(d.join("sub/y.bin"), [0u8, 1, 2]).unwrap();
        }
        let (ma, mb) = (of_dir(a.path()).unwrap(), of_dir(b.path()).unwrap());
        assert_eq!(ma, mb);
        assert_eq!(ma.files.len(), 2);
        assert_eq!(ma.files[0].path, "sub/y.bin");
        assert_eq!(ma.bytes(), 8);
        assert!(digest_hex(&ma.digest).is_some());

        std::fs::write(b.path().join("x.txt"), "hellp").unwrap();
        assert_ne!(of_dir(b.path()).unwrap().digest, ma.digest);
        std::fs::write(b.path().join("x.txt"), "hello").unwrap();
        std::fs::rename(b.path().join("x.txt"), b.path().join("z.txt")).unwrap();
        assert_ne!(of_dir(b.path()).unwrap().digest, ma.digest);
    }

    #[test]
    fn a_missing_directory_is_empty_and_digests_are_checked() {
        let m = of_dir(Path::new("/nonexistent/sextant")).unwrap();
        assert!(m.files.is_empty());
        assert_eq!(m, Manifest::new(Vec::new()));
        assert!(object_dir(&m.digest).is_some());
        assert_eq!(digest_hex("sha256:../../etc"), None);
        assert_eq!(digest_hex(&m.digest.to_uppercase()), None);
        assert_eq!(object_dir("md5:abc"), None);
    }
}
