//! `SafePath`: a relative artifact path that cannot leave its store's root.
//!
//! MLflow's artifact endpoints were broken into repeatedly by paths that look
//! harmless once and turn into `../` after a second decoding (CVE-2023-1177,
//! CVE-2024-1560), by `;` parameters (CVE-2024-1593), `#` fragments
//! (CVE-2023-6909), backslashes and drive letters. A `SafePath` is checked in
//! every form an attacker could make some layer see: the name as received and
//! each further percent-decoding of it, until decoding changes nothing.

use std::fmt;

use percent_encoding::percent_decode_str;

/// How many decodings past the first are examined before a path that keeps
/// changing is refused outright.
const MAX_DECODE_ROUNDS: usize = 8;
/// Longest accepted segment, in bytes: the usual file-name limit of file systems.
const MAX_SEGMENT_BYTES: usize = 255;
/// Longest accepted path, in bytes (S3 keys stop at 1024; the store may add a prefix).
const MAX_PATH_BYTES: usize = 900;
/// The top-level directory where the store keeps its own data (staged
/// multipart-upload parts). No client path may start with it, in any case
/// (a case-insensitive file system would otherwise map `.SEXTANT-MPU` to it).
pub(crate) const RESERVED_DIR: &str = ".sextant-mpu";

/// A path that was refused, and why (for logs; clients get MLflow's "Invalid path").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid artifact path {path:?}: {reason}")]
pub struct InvalidPath {
    pub path: String,
    pub reason: &'static str,
}

/// A validated relative artifact path: zero or more non-empty segments, none
/// of them `.` or `..`, free of separators, control characters and URL
/// delimiters. The empty path is the store's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SafePath {
    segments: Vec<String>,
}

impl SafePath {
    /// The root of the store.
    pub fn root() -> Self {
        SafePath::default()
    }

    /// Validates `name`, a path already decoded once (by the HTTP layer or by
    /// [`SafePath::from_encoded`]). Empty segments (`a//b`, a trailing `/`) and
    /// `.` segments are dropped, so `.` is the root as it is to MLflow (whose
    /// client lists `<root>/.` for `download_artifacts(artifact_path=".")`);
    /// a leading `/` makes the path absolute and is refused, and so is `..`.
    pub fn parse(name: &str) -> Result<Self, InvalidPath> {
        let refuse = |reason| InvalidPath {
            path: name.to_string(),
            reason,
        };
        if name.starts_with('/') {
            return Err(refuse("absolute path"));
        }
        // Dropped before any check, so every check (drive letters, the
        // reserved directory, `..`) sees the path as it will be used. Only a
        // literal `.` goes: one that appears after a further decoding
        // (`%2e`) is still refused below, as a layer that decodes again
        // would act on a different path than the one checked.
        let normalized = name
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect::<Vec<_>>()
            .join("/");
        let name = normalized.as_str();
        check_form(name).map_err(refuse)?;
        // Every further decoding must be safe too, or some later layer might
        // decode it again and act on the result.
        let mut current = name.to_string();
        for _ in 0..MAX_DECODE_ROUNDS {
            let decoded = percent_decode_str(&current)
                .decode_utf8()
                .map_err(|_| refuse("percent-decodes to invalid UTF-8"))?
                .into_owned();
            if decoded == current {
                let segments = name
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                return Ok(SafePath { segments });
            }
            check_form(&decoded).map_err(refuse)?;
            current = decoded;
        }
        Err(refuse("keeps changing under percent-decoding"))
    }

    /// Validates a path as it appears in a URL (percent-encoded once).
    pub fn from_encoded(raw: &str) -> Result<Self, InvalidPath> {
        let name = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| InvalidPath {
                path: raw.to_string(),
                reason: "percent-decodes to invalid UTF-8",
            })?;
        Self::parse(&name)
    }

    /// A path under the store's reserved directory, built from segments that
    /// are known to be plain (ids and numbers this crate generated).
    pub(crate) fn reserved(rest: &[&str]) -> SafePath {
        let segments = std::iter::once(RESERVED_DIR)
            .chain(rest.iter().copied())
            .map(String::from)
            .collect();
        SafePath { segments }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The decoded segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The last segment, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    /// This path followed by `other`.
    pub fn join(&self, other: &SafePath) -> SafePath {
        let mut segments = self.segments.clone();
        segments.extend(other.segments.iter().cloned());
        SafePath { segments }
    }

    /// This path with one more segment; `name` must be a valid single segment.
    pub fn child(&self, name: &str) -> Result<SafePath, InvalidPath> {
        let one = SafePath::parse(name)?;
        if one.segments.len() != 1 {
            return Err(InvalidPath {
                path: name.to_string(),
                reason: "not a single segment",
            });
        }
        Ok(self.join(&one))
    }

    /// The rest of this path below `prefix`, if it lies under (or is) `prefix`.
    pub fn strip_prefix(&self, prefix: &SafePath) -> Option<SafePath> {
        self.segments
            .strip_prefix(prefix.segments.as_slice())
            .map(|rest| SafePath {
                segments: rest.to_vec(),
            })
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

/// Checks one decoded form of a path; the error is the reason for refusing it.
fn check_form(path: &str) -> Result<(), &'static str> {
    if path.len() > MAX_PATH_BYTES {
        return Err("too long");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(if c == '\0' {
            "NUL character"
        } else {
            "control character"
        });
    }
    // `\` is a separator on Windows; `;`, `?` and `#` end a path in some URL
    // parsers, so what follows them would be checked by one layer and ignored
    // by another.
    if path.contains('\\') {
        return Err("backslash");
    }
    if path.contains([';', '?', '#']) {
        return Err("URL delimiter (`;`, `?` or `#`)");
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("Windows drive letter");
    }
    if path
        .split('/')
        .find(|s| !s.is_empty())
        .is_some_and(|first| first.eq_ignore_ascii_case(RESERVED_DIR))
    {
        return Err("reserved for the server's own data");
    }
    for segment in path.split('/') {
        if segment == "." || segment == ".." {
            return Err("`.` or `..` segment");
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err("segment too long");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        SafePath::from_encoded(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .to_string()
    }

    #[test]
    fn accepts_ordinary_paths() {
        assert_eq!(
            ok("0/abc/artifacts/model/MLmodel"),
            "0/abc/artifacts/model/MLmodel"
        );
        assert_eq!(ok("with%20space/e%20f.txt"), "with space/e f.txt");
        assert_eq!(ok("unicode/%E2%9C%93.txt"), "unicode/✓.txt");
        assert_eq!(ok("dir/"), "dir");
        assert_eq!(ok("a//b"), "a/b");
        assert_eq!(ok("..a/b..c/...d"), "..a/b..c/...d");
        assert_eq!(ok("0/r/.sextant-mpu/x"), "0/r/.sextant-mpu/x");
        assert_eq!(ok(".sextant-mpu2/x"), ".sextant-mpu2/x");
        assert_eq!(ok("time-10:00.txt"), "time-10:00.txt");
        assert_eq!(ok("100%25.txt"), "100%.txt");
        assert_eq!(ok("100%2525.txt"), "100%25.txt");
        assert_eq!(ok("not%zzescaped"), "not%zzescaped");
        assert!(SafePath::from_encoded("").unwrap().is_root());
        // `.` is the directory itself, as for MLflow: the root, or no step.
        assert!(SafePath::from_encoded(".").unwrap().is_root());
        assert!(SafePath::parse("./").unwrap().is_root());
        assert_eq!(ok("a/./b"), "a/b");
        assert_eq!(ok("0/r/artifacts/."), "0/r/artifacts");
        assert_eq!(ok("./d/./x.txt"), "d/x.txt");
        assert_eq!(ok("%2e/d"), "d");
    }

    #[test]
    fn refuses_traversal_payloads() {
        let payloads = [
            "../../../../etc/passwd",
            "0/../../etc/passwd",
            "./../etc/passwd",
            "a/./../../b",
            "..",
            "a/%252e/b",
            "./C:/Windows/win.ini",
            "./.sextant-mpu/x",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "..%2f..%2fetc%2fpasswd",
            "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
            "%25252e%25252e%25252fetc",
            "..;/..;/etc/passwd",
            "/etc/passwd",
            "%2fetc%2fpasswd",
            "%252fetc%252fpasswd",
            "..%5C..%5Cetc%5Cpasswd",
            "a%5Cb",
            "0/a%00/../etc/passwd",
            "a%00b.txt",
            "a%0ab",
            "C:%5CWindows%5Cwin.ini",
            "C:/Windows/win.ini",
            "c:",
            "a#b",
            "a%23b",
            "a%3Fb",
            "a;b",
            "%ff%fe",
            ".sextant-mpu",
            ".sextant-mpu/0123/part",
            ".SEXTANT-MPU/x",
            "%2esextant-mpu/x",
            "%252esextant-mpu%252fx",
        ];
        for p in payloads {
            assert!(SafePath::from_encoded(p).is_err(), "accepted {p:?}");
        }
    }

    #[test]
    fn refuses_paths_that_never_settle() {
        // `%25…%2541` loses one `25` per decoding; a name needing more rounds
        // than the limit is refused instead of looped on.
        let nested = |k: usize| format!("%{}41", "25".repeat(k));
        assert_eq!(
            SafePath::parse(&nested(MAX_DECODE_ROUNDS - 2))
                .unwrap()
                .to_string(),
            nested(MAX_DECODE_ROUNDS - 2)
        );
        assert!(SafePath::parse(&nested(MAX_DECODE_ROUNDS + 1)).is_err());
    }

    #[test]
    fn join_child_and_strip_prefix() {
        let run = SafePath::parse("0/r1/artifacts").unwrap();
        let file = run.join(&SafePath::parse("raw/one.txt").unwrap());
        assert_eq!(file.to_string(), "0/r1/artifacts/raw/one.txt");
        assert_eq!(file.strip_prefix(&run).unwrap().to_string(), "raw/one.txt");
        assert!(run.strip_prefix(&file).is_none());
        assert_eq!(run.child("x").unwrap().to_string(), "0/r1/artifacts/x");
        assert!(run.child("x/y").is_err());
        assert!(run.child("..").is_err());
        assert_eq!(file.file_name(), Some("one.txt"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the input, an accepted path has only plain segments.
        #[test]
        fn accepted_paths_have_only_plain_segments(raw in "[a-zA-Z0-9./\\\\%;#?:\\x00 _-]{0,40}") {
            if let Ok(p) = SafePath::from_encoded(&raw) {
                for s in p.segments() {
                    prop_assert!(!s.is_empty() && s != "." && s != "..");
                    prop_assert!(!s.contains(['/', '\\', '\0', ';', '#', '?']));
                }
            }
        }

        /// Encoding a path's segments and parsing them back gives the same path.
        #[test]
        fn encoded_plain_names_round_trip(segs in proptest::collection::vec("[a-zA-Z0-9 _~()-][a-zA-Z0-9 ._~()-]{0,15}", 1..5)) {
            let name = segs.join("/");
            let encoded: String = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/");
            let p = SafePath::from_encoded(&encoded).unwrap();
            prop_assert_eq!(p.to_string(), name);
        }
    }
}
