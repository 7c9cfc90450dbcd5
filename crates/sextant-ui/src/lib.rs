//! The web UI's files, embedded at build time (`build.rs` runs the npm build
//! of `ui/` when its sources changed, or takes `SEXTANT_UI_DIST`). The server
//! serves [`index`] at `/` and every other file under [`PREFIX`].

/// Where the bundle's files are served; Vite's `base` in `ui/vite.config.ts`.
pub const PREFIX: &str = "/static/ui/";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Relative to the bundle's root: `index.html`, `assets/index-3f2a.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes gzipped at build time, when that made them smaller.
    pub gzip: Option<&'static [u8]>,
}

mod generated {
    use super::Asset;
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Why the binary has no UI (`SEXTANT_UI=off` at build time), if it has none.
pub fn left_out() -> Option<&'static str> {
    generated::LEFT_OUT
}

/// The app's shell, served at `/`.
pub fn index() -> Option<&'static Asset> {
    get("index.html")
}

/// A file of the bundle by its path relative to [`PREFIX`].
pub fn get(path: &str) -> Option<&'static Asset> {
    generated::ASSETS.iter().find(|a| a.path == path)
}

/// Every embedded file.
pub fn all() -> &'static [Asset] {
    generated::ASSETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_has_an_index_that_loads_its_script_from_the_prefix() {
        if left_out().is_some() {
            assert!(all().is_empty());
            return;
        }
        let index = std::str::from_utf8(index().expect("index.html").bytes).unwrap();
        let script = index
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a script tag");
        let path = script
            .strip_prefix(PREFIX)
            .expect("script under the prefix");
        let js = get(path).expect("the script is embedded");
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert!(js.gzip.is_some_and(|g| g.len() < js.bytes.len()));
    }
}
