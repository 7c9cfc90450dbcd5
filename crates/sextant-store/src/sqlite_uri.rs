//! SQLite URIs read as SQLAlchemy (and so MLflow) reads them: what follows
//! `sqlite:///` is the file's path, so `sqlite:///mlflow.db` is relative to
//! the working directory and `sqlite:////var/lib/mlflow.db` is absolute.
//! Sextant once read `sqlite:///abs/path` as absolute; [`sqlite_target`]
//! refuses the URIs whose meaning that change would silently move.

use std::path::{Path, PathBuf};

use crate::StoreError;

/// Where a `sqlite:` URI points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteTarget {
    /// A private in-memory database: `sqlite://`, `sqlite:///:memory:` or `sqlite://:memory:`.
    Memory,
    /// A database file, as an absolute path.
    File(PathBuf),
}

/// Reads a `sqlite:` URI: `sqlite:///rel.db` is relative to the working
/// directory (made absolute here, so a later change of directory does not
/// move it), `sqlite:////abs.db` absolute.
///
/// A relative URI whose file does not exist, while the same path read from
/// the root does, is refused: it was written for the old reading, and
/// opening it would start an empty database beside the real one.
/// `sqlite:///./rel.db` says "relative" unambiguously and is never refused.
pub fn sqlite_target(uri: &str) -> Result<SqliteTarget, StoreError> {
    let rest = uri
        .strip_prefix("sqlite://")
        .ok_or_else(|| config(format!("not a sqlite uri: '{uri}'")))?;
    let path = match rest {
        "" | ":memory:" | "/:memory:" => return Ok(SqliteTarget::Memory),
        p => p.strip_prefix('/').ok_or_else(|| {
            config(format!(
                "sqlite uri '{uri}' names a host, which SQLite has none of; write \
                 sqlite:///relative/path.db (relative to the working directory) or \
                 sqlite:////absolute/path.db"
            ))
        })?,
    };
    if path.contains('?') {
        return Err(config(format!(
            "sqlite uri '{uri}' has query parameters, which Sextant does not support"
        )));
    }
    if path.is_empty() {
        return Err(config(format!("sqlite uri '{uri}' names no file")));
    }
    let given = Path::new(path);
    if given.is_absolute() {
        return Ok(SqliteTarget::File(given.to_path_buf()));
    }
    let relative = std::path::absolute(given)
        .map_err(|e| config(format!("resolving {path} in the working directory: {e}")))?;
    let explicit = path.starts_with("./") || path.starts_with("../");
    let old_reading = Path::new("/").join(given);
    if !explicit && !relative.exists() && old_reading.is_file() {
        return Err(config(format!(
            "'{uri}' names {} (relative to the working directory, as in SQLAlchemy and MLflow), \
             which does not exist, while {} does\n\
             hint: write sqlite:///{} to open that absolute path (four slashes), or \
             sqlite:///./{path} to create a new database in the working directory",
            relative.display(),
            old_reading.display(),
            old_reading.display(),
        )));
    }
    Ok(SqliteTarget::File(relative))
}

/// The URI of the database file at `path`, made absolute first (so
/// `sqlite:////…`, which never depends on the working directory).
pub fn sqlite_uri(path: &Path) -> Result<String, StoreError> {
    let path = std::path::absolute(path)
        .map_err(|e| config(format!("resolving {}: {e}", path.display())))?;
    Ok(format!("sqlite:///{}", path.display()))
}

fn config(msg: String) -> StoreError {
    StoreError::Config(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_slashes_are_relative_four_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            sqlite_target("sqlite:///no-such-dir-x/a.db").unwrap(),
            SqliteTarget::File(cwd.join("no-such-dir-x/a.db"))
        );
        assert_eq!(
            sqlite_target("sqlite:///./x/a.db").unwrap(),
            SqliteTarget::File(cwd.join("./x/a.db"))
        );
        assert_eq!(
            sqlite_target("sqlite:////var/lib/a.db").unwrap(),
            SqliteTarget::File(PathBuf::from("/var/lib/a.db"))
        );
        for memory in ["sqlite://", "sqlite://:memory:", "sqlite:///:memory:"] {
            assert_eq!(sqlite_target(memory).unwrap(), SqliteTarget::Memory);
        }
    }

    #[test]
    fn a_uri_written_for_the_old_absolute_reading_is_refused() {
        // `/etc/hostname`-like: a file that exists from the root, read as a
        // relative path that does not exist in the working directory.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.db");
        std::fs::write(&db, b"").unwrap();
        let rel = db.strip_prefix("/").unwrap().display().to_string();
        let err = sqlite_target(&format!("sqlite:///{rel}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("write sqlite:///{}", db.display())),
            "{err}"
        );
        assert!(err.contains("four slashes"), "{err}");
        // Written unambiguously, both readings open.
        assert_eq!(
            sqlite_target(&format!("sqlite:///{}", db.display())).unwrap(),
            SqliteTarget::File(db.clone())
        );
        assert!(matches!(
            sqlite_target(&format!("sqlite:///./{rel}")).unwrap(),
            SqliteTarget::File(p) if p != db
        ));
    }

    #[test]
    fn a_host_or_query_is_refused_with_the_two_forms() {
        let err = sqlite_target("sqlite://rel/a.db").unwrap_err().to_string();
        assert!(err.contains("sqlite:////absolute/path.db"), "{err}");
        assert!(sqlite_target("sqlite:///a.db?mode=ro").is_err());
        assert!(sqlite_target("postgresql://x").is_err());
    }

    #[test]
    fn built_uris_are_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let uri = sqlite_uri(Path::new("d/s.db")).unwrap();
        assert_eq!(uri, format!("sqlite:///{}", cwd.join("d/s.db").display()));
        assert!(uri.starts_with("sqlite:////"));
        assert_eq!(
            sqlite_target(&uri).unwrap(),
            SqliteTarget::File(cwd.join("d/s.db"))
        );
    }
}
