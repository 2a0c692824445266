//! The hand-written baseline Durable Object (tests/bench/baseline/worker.mjs) in workers-rs: every
//! socket is accepted with `accept_web_socket`; a publish sends its body, as is, to all of them.
use worker::*;

#[durable_object]
pub struct Hub {
    state: State,
}

impl DurableObject for Hub {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.path() == "/ws" {
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server);
            return Response::from_websocket(pair.client);
        }
        let body = req.text().await?;
        for ws in self.state.get_websockets() {
            // As the JS baseline: a send that throws (a closing socket) is the runtime's to clean up.
            let _ = ws.send_with_str(&body);
        }
        Ok(Response::empty()?.with_status(202))
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let hub = || env.durable_object("HUB")?.id_from_name("hub")?.get_stub();
    match (req.path().as_str(), req.method()) {
        ("/health", _) => Response::ok("ok"),
        ("/ws", Method::Get) => {
            if req.headers().get("upgrade")?.as_deref() != Some("websocket") {
                return Response::error("expected a WebSocket upgrade", 426);
            }
            hub()?.fetch_with_request(req).await
        }
        ("/api/publish", Method::Post) => {
            let token = env.var("PUBLISH_TOKEN")?.to_string();
            if req.headers().get("authorization")?.as_deref() != Some(format!("Bearer {token}").as_str()) {
                return Response::error("unauthorized", 401);
            }
            hub()?.fetch_with_request(req).await
        }
        _ => Response::error("not found", 404),
    }
}
