//! Which host directories the server reads files from on a caller's behalf:
//! a monitor's `data:` and `baseline:`, the files of built-in steps run in the
//! server process. A path must lie, once symlinks are resolved, under the data
//! directory, the working directory the server started in (where the
//! examples' relative paths point) or a `--data-root`; otherwise anyone who
//! may create a monitor could read any CSV on the host through its statistics.
//!
//! `run:` steps run arbitrary code of whoever may run the pipeline and are out
//! of this rule's scope, as are the CLI's local commands.

use std::path::{Path, PathBuf};

/// The directories a server reads from.
#[derive(Debug, Clone)]
pub struct DataRoots {
    /// Canonical roots with what each is, for the error; `None` reads anywhere.
    roots: Option<Vec<(&'static str, PathBuf)>>,
}

/// A path outside every data root, or one that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutsideRoots {
    #[error(
        "{what} '{path}' is outside the directories the server reads from ({roots}): a file the server reads on a caller's behalf must lie under the data directory, the server's working directory or a --data-root"
    )]
    Outside {
        what: String,
        path: String,
        roots: String,
    },
    #[error("{what} '{path}' cannot be resolved: {reason}")]
    Unresolvable {
        what: String,
        path: String,
        reason: String,
    },
}

impl DataRoots {
    /// No confinement: in-process servers of tests and embedders.
    /// `sextant server` always confines (see [`DataRoots::new`]).
    pub fn anywhere() -> DataRoots {
        DataRoots { roots: None }
    }

    /// The data directory, the working directory and each `extra` root,
    /// canonicalized now (each must exist).
    pub fn new(
        data_dir: &Path,
        working_dir: &Path,
        extra: &[PathBuf],
    ) -> std::io::Result<DataRoots> {
        let canonical = |p: &Path| {
            std::fs::canonicalize(p).map_err(|e| {
                std::io::Error::new(e.kind(), format!("data root {}: {e}", p.display()))
            })
        };
        let mut roots = vec![
            ("data directory", canonical(data_dir)?),
            ("working directory", canonical(working_dir)?),
        ];
        for p in extra {
            roots.push(("--data-root", canonical(p)?));
        }
        Ok(DataRoots { roots: Some(roots) })
    }

    /// The same roots and `path` (canonicalized now), shown as `kind` in errors:
    /// a local artifact store outside the data directory, whose files the
    /// server wrote itself (a monitor run's `window.csv` that a retraining
    /// pipeline reads).
    pub fn also(mut self, kind: &'static str, path: &Path) -> std::io::Result<DataRoots> {
        if let Some(roots) = &mut self.roots {
            roots.push((kind, std::fs::canonicalize(path)?));
        }
        Ok(self)
    }

    /// `path` (relative to the working directory) resolved through every
    /// symlink, when it lies under a root; `what` names it in the error
    /// ("monitor data"). A path that does not exist yet is resolved through
    /// its longest existing ancestor, and may not climb out with `..`.
    /// Callers read the returned path, so a symlink swapped in later is not
    /// followed past the check.
    pub fn check(&self, what: &str, path: &Path) -> Result<PathBuf, OutsideRoots> {
        let unresolvable = |reason: String| OutsideRoots::Unresolvable {
            what: what.to_string(),
            path: path.display().to_string(),
            reason,
        };
        let resolved = resolve(path).map_err(unresolvable)?;
        let Some(roots) = &self.roots else {
            return Ok(resolved);
        };
        if roots.iter().any(|(_, root)| resolved.starts_with(root)) {
            return Ok(resolved);
        }
        let listed: Vec<String> = roots
            .iter()
            .map(|(kind, root)| format!("{kind} {}", root.display()))
            .collect();
        let shown = if resolved == path {
            path.display().to_string()
        } else {
            format!("{}' (resolved to '{}", path.display(), resolved.display())
        };
        Err(OutsideRoots::Outside {
            what: what.to_string(),
            path: shown,
            roots: listed.join(", "),
        })
    }

    /// [`DataRoots::check`] of `path` and, when it is a directory (a model, a
    /// directory of capture files), of everything under it, so a symlink
    /// inside cannot lead out. Symlinked directories are walked once each.
    pub fn check_tree(&self, what: &str, path: &Path) -> Result<PathBuf, OutsideRoots> {
        let resolved = self.check(what, path)?;
        if self.roots.is_none() || !resolved.is_dir() {
            return Ok(resolved);
        }
        let mut seen = std::collections::HashSet::from([resolved.clone()]);
        let mut dirs = vec![resolved.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue; // unreadable: the reader reports it
            };
            for entry in entries.flatten() {
                let inner = self.check(what, &entry.path())?;
                if inner.is_dir() && seen.insert(inner.clone()) {
                    dirs.push(inner);
                }
            }
        }
        Ok(resolved)
    }
}

/// `path` made absolute with every symlink resolved; a missing tail is kept
/// as written.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(path).map_err(|e| e.to_string())?;
    let mut existing = absolute.as_path();
    let mut tail = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut real) => {
                for part in tail.iter().rev() {
                    real.push(part);
                }
                return Ok(real);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink would be followed wherever it points
                // once its target appears.
                if std::fs::symlink_metadata(existing).is_ok() {
                    return Err(format!(
                        "{} is a symlink to a missing file",
                        existing.display()
                    ));
                }
                // A path ending in `..` has no file name: a missing
                // directory's `..` is refused rather than guessed.
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e.to_string());
                };
                tail.push(name.to_owned());
                existing = parent;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_before_they_are_confined() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(outside.path().join("secret.csv"), "a\n1\n").unwrap();
        std::fs::write(data.join("ok.csv"), "a\n1\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.csv"), data.join("link.csv"))
            .unwrap();
        let roots = DataRoots::new(&data, &data, &[]).unwrap();
        assert!(roots.check("monitor data", &data.join("ok.csv")).is_ok());
        // Not there yet (a pipeline may write it later): resolved by its parent.
        assert!(
            roots
                .check("monitor data", &data.join("later/x.csv"))
                .is_ok()
        );
        for bad in [
            outside.path().join("secret.csv"),
            data.join("link.csv"),
            data.join("../../").join(outside.path().join("secret.csv")),
        ] {
            let e = roots.check("monitor data", &bad).unwrap_err().to_string();
            assert!(
                e.contains("outside the directories the server reads from")
                    && e.contains("--data-root"),
                "{bad:?}: {e}"
            );
        }
        assert!(
            roots
                .check("monitor data", &data.join("nope/../../x.csv"))
                .is_err()
        );
        // A directory is checked with everything under it.
        std::fs::create_dir(data.join("model")).unwrap();
        std::fs::write(data.join("model/MLmodel"), "").unwrap();
        assert!(roots.check_tree("a model", &data.join("model")).is_ok());
        std::os::unix::fs::symlink(outside.path(), data.join("model/leak")).unwrap();
        assert!(roots.check_tree("a model", &data.join("model")).is_err());
        let wider = DataRoots::new(&data, &data, &[outside.path().to_path_buf()]).unwrap();
        assert!(wider.check("monitor data", &data.join("link.csv")).is_ok());
        assert!(
            DataRoots::anywhere()
                .check("monitor data", &outside.path().join("secret.csv"))
                .is_ok()
        );
    }
}
