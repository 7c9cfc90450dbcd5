//! Validated pipeline specs, parsed once per stored version.
//!
//! Every step of a run (and every read of a run's detail) needs the run's
//! validated spec; parsing and validating the YAML each time dominated the
//! orchestrator's CPU on wide fan-outs. The cache keeps, per pipeline name,
//! the newest spec text it saw with its validated form, so a pipeline is
//! parsed again only when its stored text changes. An entry is reused only
//! when the stored text is exactly the cached text, so a re-applied pipeline
//! (even within the same millisecond) is never served stale.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use sextant_pipelines::Validated;

/// One pipeline's newest seen spec text and its validated form.
struct Entry {
    text: Arc<str>,
    spec: Arc<Validated>,
}

/// Validated specs by pipeline name; one entry per name.
#[derive(Default)]
pub(super) struct SpecCache {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The cache shared by the orchestrator and the API handlers.
pub(super) static SPECS: LazyLock<SpecCache> = LazyLock::new(SpecCache::default);

impl SpecCache {
    /// The validated spec of pipeline `name` stored as `text`, parsed only
    /// if this text was not seen last for `name`. Parsing is CPU-bound: call
    /// this off the async workers (e.g. inside a store call on the blocking
    /// pool). Specs that do not validate are not cached.
    pub(super) fn load(
        &self,
        name: &str,
        text: &str,
    ) -> Result<Arc<Validated>, sextant_pipelines::Error> {
        if let Some(e) = self.lock().get(name)
            && *e.text == *text
        {
            return Ok(Arc::clone(&e.spec));
        }
        // Parse without the lock so other pipelines are not held up.
        let spec = Arc::new(sextant_pipelines::load(name, text)?);
        self.lock().insert(
            name.to_string(),
            Entry {
                text: Arc::from(text),
                spec: Arc::clone(&spec),
            },
        );
        Ok(spec)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // The map stays consistent even if a holder panicked.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "name: p\nsteps:\n  a:\n    run: \"true\"\n";
    const B: &str = "name: p\nsteps:\n  b:\n    run: \"true\"\n";

    #[test]
    fn reuses_the_same_text_and_reparses_a_new_one() {
        let cache = SpecCache::default();
        let a1 = cache.load("p", A).unwrap();
        let a2 = cache.load("p", A).unwrap();
        assert!(Arc::ptr_eq(&a1, &a2));
        let b = cache.load("p", B).unwrap();
        assert_eq!(b.pipeline.steps[0].name.value, "b");
        assert_eq!(cache.lock().len(), 1);
        let a3 = cache.load("p", A).unwrap();
        assert!(!Arc::ptr_eq(&a1, &a3));
        assert_eq!(a3.pipeline.steps[0].name.value, "a");
    }

    #[test]
    fn does_not_cache_invalid_specs() {
        let cache = SpecCache::default();
        assert!(cache.load("p", "name: [").is_err());
        assert!(cache.lock().is_empty());
    }
}
