//! The Worker's public routes, each path spelled once: the router matches on [`PublicRoute`],
//! and the `Allow` of a 405 and the CORS rules are read from it. The paths the Worker forwards
//! to the hub unchanged (`/ws`, `/api/publish`, `/api/channels/`) and the ones the terminal client
//! reads (`/api/snapshot`) are declared in the hub's `api/route.rs`, which every side uses.

use crate::cors::ApiRoute;
use tickwire_hub::api::route;

/// What a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicRoute<'a> {
    /// `GET /health`
    Health,
    /// `GET /metrics`
    Metrics,
    /// `GET /api/snapshot`
    Snapshot,
    /// `GET /api/history`
    History,
    /// `GET /ws` (a WebSocket upgrade)
    Ws,
    /// `POST /api/publish`
    Publish,
    /// `GET /api/channels`
    Channels,
    /// `GET /api/presence`
    Presence,
    /// `DELETE /api/channels/<name>`, with the name as sent
    Channel(&'a str),
    /// Anything else: a dashboard file, or 404.
    Other,
}

impl<'a> PublicRoute<'a> {
    pub fn parse(path: &'a str) -> PublicRoute<'a> {
        match path {
            "/health" => PublicRoute::Health,
            "/metrics" => PublicRoute::Metrics,
            route::SNAPSHOT => PublicRoute::Snapshot,
            "/api/history" => PublicRoute::History,
            "/api/channels" => PublicRoute::Channels,
            "/api/presence" => PublicRoute::Presence,
            route::WS => PublicRoute::Ws,
            route::PUBLISH => PublicRoute::Publish,
            p => p.strip_prefix(route::CHANNELS).map_or(PublicRoute::Other, PublicRoute::Channel),
        }
    }

    /// Which CORS rules the route's answers carry (the API's routes; not the dashboard, the
    /// socket, health or metrics).
    pub fn api(self) -> Option<ApiRoute> {
        match self {
            PublicRoute::Snapshot | PublicRoute::History | PublicRoute::Channels | PublicRoute::Presence => {
                Some(ApiRoute::Read)
            }
            PublicRoute::Publish => Some(ApiRoute::Publish),
            PublicRoute::Channel(_) => Some(ApiRoute::Manage),
            _ => None,
        }
    }

    /// The methods the route answers, for a 405's `Allow` (`None`: no such route).
    pub fn allow(self) -> Option<&'static str> {
        match self.api() {
            Some(api) => Some(api.methods()),
            None if self == PublicRoute::Other => None,
            None => Some("GET"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_routes_and_methods() {
        let cases = [
            ("/health", PublicRoute::Health, Some("GET")),
            ("/metrics", PublicRoute::Metrics, Some("GET")),
            ("/api/snapshot", PublicRoute::Snapshot, Some("GET, OPTIONS")),
            ("/api/history", PublicRoute::History, Some("GET, OPTIONS")),
            ("/ws", PublicRoute::Ws, Some("GET")),
            ("/api/publish", PublicRoute::Publish, Some("POST, OPTIONS")),
            ("/api/channels", PublicRoute::Channels, Some("GET, OPTIONS")),
            ("/api/presence", PublicRoute::Presence, Some("GET, OPTIONS")),
            ("/api/channels/news", PublicRoute::Channel("news"), Some("DELETE, OPTIONS")),
            ("/api/channels/", PublicRoute::Channel(""), Some("DELETE, OPTIONS")),
            ("/", PublicRoute::Other, None),
            ("/api/snapshot/", PublicRoute::Other, None),
            ("/app.js", PublicRoute::Other, None),
        ];
        for (path, route, allow) in cases {
            assert_eq!(PublicRoute::parse(path), route, "{path}");
            assert_eq!(route.allow(), allow, "{path}");
        }
        assert_eq!(PublicRoute::Health.api(), None);
        assert_eq!(PublicRoute::Channel("x").api(), Some(ApiRoute::Manage));
    }
}
