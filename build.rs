//! Embeds the dashboard (`static/`) into the Worker as a table of files (`src/assets.rs`
//! serves it). Each file's ETag is a hash of its bytes, computed here once.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=static");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("static/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut table = String::from("&[\n");
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("file names in static/ are UTF-8");
        let bytes = std::fs::read(&path).expect("static file is readable");
        // FNV-1a, 64 bits: a content hash for ETag, not a security boundary.
        let hash =
            bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
        let _ = writeln!(
            table,
            "    StaticFile {{ path: \"/{name}\", content_type: \"{}\", etag: \"\\\"{hash:016x}\\\"\", body: include_bytes!({:?}) }},",
            content_type(name),
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
