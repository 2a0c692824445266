//! Which browser origins may use tickwire: the WebSocket origin check and the API's CORS
//! headers. Pure, so the rules are unit-tested.
//!
//! A request without an `Origin` header is not a cross-origin browser request (curl, apps,
//! servers), so the origin check lets it through: the check exists to stop other websites
//! from opening sockets with a visitor's browser.

/// `ALLOWED_ORIGINS`: comma-separated origins (`scheme://host[:port]`), or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// The local dev origins, the default when the var is unset.
    pub const DEFAULT: &'static str = "http://127.0.0.1:8787,http://localhost:8787";

    pub fn parse(list: &str) -> AllowedOrigins {
        AllowedOrigins(
            list.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        )
    }

    pub fn any(&self) -> bool {
        self.0.iter().any(|o| o == "*")
    }

    /// Whether a browser on `origin` may connect to `/ws` or publish.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => self.any() || self.0.iter().any(|a| a.eq_ignore_ascii_case(o.trim_end_matches('/'))),
        }
    }
}

/// The API routes CORS distinguishes: public reads anyone may make, the publish endpoint, and
/// channel management (`DELETE /api/channels/<name>`), which is as guarded as publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiRoute {
    Read,
    Publish,
    Manage,
}

impl ApiRoute {
    /// The methods the route answers, preflight included.
    pub fn methods(self) -> &'static str {
        match self {
            ApiRoute::Read => "GET, OPTIONS",
            ApiRoute::Publish => "POST, OPTIONS",
            ApiRoute::Manage => "DELETE, OPTIONS",
        }
    }
}

/// CORS headers for a response (or a preflight) of `route` to a request from `origin`.
/// Reads are public data: any origin. Publishing and managing channels (`DELETE`) are for
/// allowed origins only (and still need the token).
pub fn headers(route: ApiRoute, origin: Option<&str>, allowed: &AllowedOrigins) -> Vec<(&'static str, String)> {
    let guarded = || origin.filter(|o| allowed.allows(Some(o))).map(str::to_owned);
    let allow_origin = match route {
        ApiRoute::Read => Some("*".to_owned()),
        ApiRoute::Publish | ApiRoute::Manage => guarded(),
    };
    let methods = route.methods();
    let Some(allow_origin) = allow_origin else { return Vec::new() };
    let mut h = vec![
        ("access-control-allow-origin", allow_origin),
        ("access-control-allow-methods", methods.to_owned()),
        ("access-control-allow-headers", "authorization, content-type".to_owned()),
        ("access-control-max-age", "600".to_owned()),
    ];
    if route != ApiRoute::Read {
        // The answer depends on the Origin header; caches must keep them apart.
        h.push(("vary", "Origin".to_owned()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_check() {
        let a = AllowedOrigins::parse(AllowedOrigins::DEFAULT);
        assert!(a.allows(Some("http://127.0.0.1:8787")));
        assert!(a.allows(Some("http://LOCALHOST:8787/")));
        assert!(!a.allows(Some("http://127.0.0.1:9999")));
        assert!(!a.allows(Some("https://evil.example")));
        assert!(!a.allows(Some("null")));
        assert!(a.allows(None), "no Origin: not a cross-site browser request");
        assert!(AllowedOrigins::parse("*").allows(Some("https://any.example")));
        assert!(!AllowedOrigins::parse("").allows(Some("http://127.0.0.1:8787")));
    }

    #[test]
    fn cors_headers() {
        let a = AllowedOrigins::parse("https://app.example");
        let read = headers(ApiRoute::Read, Some("https://other.example"), &a);
        assert!(read.contains(&("access-control-allow-origin", "*".to_owned())));
        let publish = headers(ApiRoute::Publish, Some("https://app.example"), &a);
        assert!(publish.contains(&("access-control-allow-origin", "https://app.example".to_owned())));
        assert!(publish.contains(&("access-control-allow-headers", "authorization, content-type".to_owned())));
        assert!(headers(ApiRoute::Publish, Some("https://other.example"), &a).is_empty());
        let manage = headers(ApiRoute::Manage, Some("https://app.example"), &a);
        assert!(manage.contains(&("access-control-allow-methods", "DELETE, OPTIONS".to_owned())));
        assert!(manage.contains(&("vary", "Origin".to_owned())));
        assert!(headers(ApiRoute::Manage, Some("https://other.example"), &a).is_empty());
        assert!(headers(ApiRoute::Publish, None, &a).is_empty());
    }
}
