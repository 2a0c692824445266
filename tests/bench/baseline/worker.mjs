// The baseline hub of scripts/bench: the idiomatic minimal hibernation Durable Object. Every
// socket is accepted with acceptWebSocket; a publish sends its body, as is, to all of them. A
// client's close is answered and counted, and GET /metrics prints that count in the one line of
// tickwire's exposition the churn mode reads.
import { DurableObject } from "cloudflare:workers";

export class Hub extends DurableObject {
  closed = 0;

  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/metrics") return new Response(`tickwire_connections_closed_total ${this.closed}\n`);
    if (pathname === "/ws") {
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server);
      return new Response(null, { status: 101, webSocket: client });
    }
    const body = await request.text();
    for (const ws of this.ctx.getWebSockets()) ws.send(body);
    return new Response(null, { status: 202 });
  }

  webSocketClose(ws) {
    this.closed++;
    try {
      ws.close(1000); // the reply a client's close frame wants (the runtime may already have sent it)
    } catch {}
  }

  webSocketError() {
    this.closed++;
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const hub = () => env.HUB.get(env.HUB.idFromName("hub"));
    if (pathname === "/health") return new Response("ok");
    if (pathname === "/metrics") return hub().fetch(request);
    if (pathname === "/ws" && request.method === "GET") {
      if (request.headers.get("upgrade") !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
      return hub().fetch(request);
    }
    if (pathname === "/api/publish" && request.method === "POST") {
      if (request.headers.get("authorization") !== `Bearer ${env.PUBLISH_TOKEN}`) return new Response("unauthorized", { status: 401 });
      return hub().fetch(request);
    }
    return new Response("not found", { status: 404 });
  }
};
