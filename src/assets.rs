//! The dashboard's files (`static/`, and the client package's module from `static/client/`),
//! embedded by `build.rs` and served by the Worker itself.
//!
//! Not Workers static assets: with `[assets]`, every request (WebSockets included) passes
//! through the platform's asset router before the Worker, and under `wrangler dev` that router
//! runs in the same workerd as the hub, proxying every socket once more: measured with 2,000
//! idle sockets, 213 KB of memory per socket with it and 131 KB without (the hand-written
//! baseline: 110 KB), and the hub's deliveries/s at 5,000 sockets went from 0.83x to 1.0x of the
//! baseline. The dashboard is 35 KB; serving it costs that much wasm and nothing per socket.

/// One embedded file.
#[derive(Debug)]
pub struct StaticFile {
    pub path: &'static str,
    pub content_type: &'static str,
    /// A strong ETag (quoted content hash).
    pub etag: &'static str,
    pub body: &'static [u8],
}

const FILES: &[StaticFile] = include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

/// The file a GET of `path` serves: `/` is `index.html`.
pub fn find(path: &str) -> Option<&'static StaticFile> {
    let path = if path == "/" { "/index.html" } else { path };
    FILES.iter().find(|f| f.path == path)
}

/// Whether a request's `If-None-Match` already names this file's current version.
pub fn not_modified(file: &StaticFile, if_none_match: Option<&str>) -> bool {
    if_none_match
        .is_some_and(|h| h.trim() == "*" || h.split(',').any(|tag| tag.trim().trim_start_matches("W/") == file.etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/static/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn every_file_in_static_is_served_with_its_type() {
        let (mut files, mut folders) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/static")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_dir() {
                folders.push(name)
            } else {
                files.push(name)
            }
        }
        assert!(files.contains(&"index.html".to_owned()));
        for name in &files {
            let f = find(&format!("/{name}")).unwrap_or_else(|| panic!("{name} not served"));
            assert_eq!(f.body, on_disk(name).as_slice(), "{name}");
        }
        // Folders are not served, except the client package's module at its old URL (build.rs):
        // a new folder must be given its place there (and here) on purpose.
        assert_eq!(folders, ["client"], "folders in static/");
        let module = find("/tickwire-client.js").expect("the client module is served");
        assert_eq!(module.body, on_disk("client/tickwire-client.js").as_slice());
        assert_eq!(module.content_type, "text/javascript; charset=utf-8");
        assert_eq!(FILES.len(), files.len() + 1, "the top-level files and the module, nothing else");
        for npm_only in ["/package.json", "/tickwire-client.d.ts", "/README.md", "/client/tickwire-client.js"] {
            assert!(find(npm_only).is_none(), "{npm_only} is not served");
        }
        assert_eq!(find("/").map(|f| f.path), Some("/index.html"));
        assert_eq!(find("/index.html").map(|f| f.content_type), Some("text/html; charset=utf-8"));
        assert_eq!(find("/app.js").map(|f| f.content_type), Some("text/javascript; charset=utf-8"));
        assert_eq!(find("/style.css").map(|f| f.content_type), Some("text/css; charset=utf-8"));
        assert!(find("/nope.js").is_none() && find("/static/app.js").is_none() && find("").is_none());
    }

    #[test]
    fn etags_follow_content_and_revalidate() {
        let (a, b) = (find("/app.js").unwrap(), find("/view.js").unwrap());
        assert_ne!(a.etag, b.etag);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"') && a.etag.len() == 18);
        assert!(not_modified(a, Some(a.etag)));
        assert!(not_modified(a, Some(&format!("W/{}, {}", b.etag, a.etag))));
        assert!(not_modified(a, Some("*")));
        assert!(!not_modified(a, Some(b.etag)) && !not_modified(a, None));
    }
}
