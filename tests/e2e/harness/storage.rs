//! What the hub has written: its Durable Objects' SQLite files under wrangler's persist
//! directory, read (read-only, while workerd runs: the files are in WAL mode) with python3's
//! sqlite3, so tests check storage itself rather than what the hub says about it.

use super::Wrangler;
use std::collections::BTreeMap;
use std::process::Command;

/// Reads every key/value the Durable Object KV API stored in one object's file. Values are in
/// V8's serialization format; the hub stores only strings (JSON text), which this decodes:
/// 0xFF and a version varint, then '"' (one-byte string) or 'c' (UTF-16), a byte-length varint
/// and the characters.
const DUMP: &str = r#"
import json, sqlite3, sys
def varint(b, i):
    n = shift = 0
    while True:
        n |= (b[i] & 0x7F) << shift
        i += 1
        if b[i - 1] < 0x80:
            return n, i
        shift += 7
def decode(v):
    b = bytes(v)
    i = 0
    if b[:1] == b"\xff":
        _, i = varint(b, 1)
    tag = b[i:i + 1]
    if tag in (b'"', b"c"):
        n, j = varint(b, i + 1)
        return b[j:j + n].decode("latin-1" if tag == b'"' else "utf-16-le")
    return "<not a string: " + b.hex() + ">"
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(json.dumps({k: decode(v) for k, v in c.execute("select key, value from _cf_KV")}))
"#;

impl Wrangler {
    /// The stored keys of the hub's sequencer (shard 0, the only object of a single-shard hub):
    /// key -> value as stored (serialised). Empty before the object first wrote anything.
    pub fn stored(&self) -> BTreeMap<String, String> {
        let dir = self.persist.0.join("v3/do/tickwire-Hub");
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "sqlite") && !p.ends_with("metadata.sqlite"));
        assert!(files.len() <= 1, "one hub object expected, found {files:?}");
        let Some(file) = files.first() else { return BTreeMap::new() };
        let out = Command::new("python3").arg("-c").arg(DUMP).arg(file).output().expect("run python3");
        assert!(out.status.success(), "sqlite read failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("sqlite dump JSON")
    }
}
