//! Builds the web UI (`ui/`, npm + Vite) and embeds its files.
//!
//! - The bundle is cached outside `OUT_DIR`, in `<target>/sextant-ui/<key>/`,
//!   keyed by a hash of the UI's sources and lockfile: `cargo check`, clippy,
//!   debug and release builds share one npm build, and a build whose UI did
//!   not change runs no npm at all.
//! - `npm ci` runs only when `package-lock.json` changed since the last one
//!   (a marker in `node_modules`); a lock file in `ui/` keeps two cargo
//!   builds of one checkout from racing on `node_modules`.
//! - Escape hatches: `SEXTANT_UI_DIST=DIR` embeds a bundle built elsewhere;
//!   `SEXTANT_UI=off` builds a binary whose `/` says the UI was left out.
//!   Without Node.js and npm (and neither of those set), the build stops and
//!   says what to install.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files and folders of `ui/` the bundle is made from.
const SOURCES: &[&str] = &[
    "src",
    "scripts",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    println!("cargo:rerun-if-env-changed=SEXTANT_UI_DIST");
    println!("cargo:rerun-if-env-changed=SEXTANT_UI");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));

    if std::env::var("SEXTANT_UI").as_deref() == Ok("off") {
        write_table(
            &out,
            None,
            Some("this binary was built with SEXTANT_UI=off"),
        );
        return;
    }
    let dist = match std::env::var_os("SEXTANT_UI_DIST") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            println!("cargo:rerun-if-changed={}", dir.display());
            if !dir.join("index.html").is_file() {
                fail(&format!(
                    "SEXTANT_UI_DIST={} has no index.html: point it at the output of `npm run build` in ui/",
                    dir.display()
                ));
            }
            dir
        }
        None => {
            let ui = manifest.join("../../ui");
            for s in SOURCES {
                println!("cargo:rerun-if-changed={}", ui.join(s).display());
            }
            build_cached(&ui, &out)
        }
    };
    write_table(&out, Some(&dist), None);
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    panic!("sextant-ui: {message}");
}

/// The bundle for the current sources: from the cache, or built into it.
fn build_cached(ui: &Path, out: &Path) -> PathBuf {
    let key = source_key(ui);
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<crate>-<hash>/out.
    let cache_root = out
        .ancestors()
        .nth(4)
        .map(|t| t.join("sextant-ui"))
        .unwrap_or_else(|| out.join("sextant-ui"));
    let dist = cache_root.join(format!("{key:016x}"));
    if dist.join("index.html").is_file() {
        return dist;
    }
    fs::create_dir_all(&cache_root)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", cache_root.display())));
    // One npm at a time per checkout: node_modules is shared by every target dir.
    let lock = File::create(ui.join(".build.lock"))
        .unwrap_or_else(|e| fail(&format!("cannot create ui/.build.lock: {e}")));
    lock.lock()
        .unwrap_or_else(|e| fail(&format!("cannot lock ui/.build.lock: {e}")));
    if dist.join("index.html").is_file() {
        return dist;
    }
    require_node();
    install(ui);
    let tmp = cache_root.join(format!("{key:016x}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    run(
        Command::new("npm")
            .args(["run", "--silent", "build"])
            .current_dir(ui)
            .env("SEXTANT_UI_OUT", &tmp),
        "npm run build (in ui/)",
    );
    if !tmp.join("index.html").is_file() {
        fail("npm run build wrote no index.html");
    }
    let _ = fs::remove_dir_all(&dist);
    fs::rename(&tmp, &dist).unwrap_or_else(|e| fail(&format!("{}: {e}", dist.display())));
    prune(&cache_root, &dist);
    dist
}

/// Bundles kept besides the one just built: enough for the other builds of
/// one target dir (check, debug, release at other commits) to keep theirs.
const KEPT_BUNDLES: usize = 8;

/// Drops the oldest cached bundles (each edit of `ui/` makes one), so the
/// cache does not grow without end.
fn prune(cache_root: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(cache_root) else {
        return;
    };
    let mut bundles: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p != keep && !p.to_string_lossy().contains(".tmp-"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    bundles.sort();
    let excess = bundles.len().saturating_sub(KEPT_BUNDLES);
    for (_, old) in bundles.into_iter().take(excess) {
        let _ = fs::remove_dir_all(old);
    }
}

fn require_node() {
    let ok = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok("node") || !ok("npm") {
        fail(
            "building the web UI needs Node.js (20 or newer) and npm on PATH: install them \
             (Debian: apt-get install nodejs npm), or set SEXTANT_UI_DIST=DIR to embed a UI \
             built elsewhere, or SEXTANT_UI=off to build without the UI",
        );
    }
}

/// `npm ci` unless `node_modules` already matches the lockfile.
fn install(ui: &Path) {
    let lockfile = fs::read(ui.join("package-lock.json"))
        .unwrap_or_else(|e| fail(&format!("ui/package-lock.json: {e}")));
    let want = format!("{:016x}", fnv(&lockfile, FNV_OFFSET));
    let marker = ui.join("node_modules/.sextant-lock-hash");
    if fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        return;
    }
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(ui),
        "npm ci (in ui/)",
    );
    fs::write(&marker, want).unwrap_or_else(|e| fail(&format!("{}: {e}", marker.display())));
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| fail(&format!("{what}: cannot start: {e}")));
    if !status.success() {
        fail(&format!("{what} failed ({status})"));
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a: a cache key, not a security boundary.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A hash of every source file's path and contents, in a stable order.
fn source_key(ui: &Path) -> u64 {
    let mut files = Vec::new();
    for s in SOURCES {
        collect(&ui.join(s), &mut files);
    }
    files.sort();
    files.iter().fold(FNV_OFFSET, |h, f| {
        let rel = f
            .strip_prefix(ui)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let h = fnv(rel.as_bytes(), h);
        let bytes = fs::read(f).unwrap_or_else(|e| fail(&format!("{}: {e}", f.display())));
        fnv(&(bytes.len() as u64).to_le_bytes(), fnv(&bytes, h))
    })
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let entries =
            fs::read_dir(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        for e in entries.flatten() {
            collect(&e.path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `$OUT_DIR/assets.rs`: the table of embedded files (`include_bytes!` of
/// the bundle's absolute paths).
fn write_table(out: &Path, dist: Option<&Path>, left_out: Option<&str>) {
    let mut files = Vec::new();
    if let Some(d) = dist {
        collect(d, &mut files);
    }
    files.retain(|f| f.extension().is_none_or(|e| e != "gz"));
    files.sort();
    let mut src = String::from("pub static ASSETS: &[Asset] = &[\n");
    for f in &files {
        let rel = f
            .strip_prefix(dist.expect("files come from dist"))
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        let gz = PathBuf::from(format!("{}.gz", f.display()));
        let gzip = if gz.is_file() {
            format!("Some(include_bytes!({:?}))", gz.display().to_string())
        } else {
            "None".to_string()
        };
        writeln!(
            src,
            "    Asset {{ path: {rel:?}, content_type: {:?}, bytes: include_bytes!({:?}), gzip: {gzip} }},",
            content_type(&rel),
            f.display().to_string(),
        )
        .expect("write to a String");
    }
    src.push_str("];\n");
    writeln!(src, "pub static LEFT_OUT: Option<&str> = {left_out:?};").expect("write to a String");
    fs::write(out.join("assets.rs"), src).unwrap_or_else(|e| fail(&format!("assets.rs: {e}")));
}
