//! Embeds the dashboard (`static/`) into the Worker as a table of files (`src/assets.rs`
//! serves it). Each file's ETag is a hash of its bytes, computed here once.
//!
//! Every file at the top of `static/` is served at `/<name>`. Folders are not walked, with one
//! exception: the client package (`static/client/`, the npm package `@tickwire/client`) has its
//! module served at `/tickwire-client.js`, the URL apps and the dashboard have always imported
//! it from. The package's `package.json`, declarations and README are for npm, not browsers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (file under `static/`, the path it is served at) for files inside folders of `static/`.
const NESTED: &[(&str, &str)] = &[("client/tickwire-client.js", "/tickwire-client.js")];

fn main() {
    println!("cargo:rerun-if-changed=static");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .expect("static/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).expect("file names in static/ are UTF-8").to_owned();
            (p, format!("/{name}"))
        })
        .collect();
    for (file, served_at) in NESTED {
        let path = dir.join(file);
        assert!(path.is_file(), "static/{file} exists (served at {served_at})");
        assert!(files.iter().all(|(_, p)| p != served_at), "{served_at} is served from one file only");
        files.push((path, (*served_at).to_owned()));
    }
    files.sort();
    let mut table = String::from("&[\n");
    for (path, served_at) in files {
        let bytes = std::fs::read(&path).expect("static file is readable");
        // FNV-1a, 64 bits: a content hash for ETag, not a security boundary.
        let hash =
            bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
        let _ = writeln!(
            table,
            "    StaticFile {{ path: \"{served_at}\", content_type: \"{}\", etag: \"\\\"{hash:016x}\\\"\", body: include_bytes!({:?}) }},",
            content_type(&served_at),
            path.display().to_string(),
        );
    }
    table.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("static_files.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
