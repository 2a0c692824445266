// The baseline hub of scripts/bench: the idiomatic minimal hibernation Durable Object. Every
// socket is accepted with acceptWebSocket; a publish sends its body, as is, to all of them.
import { DurableObject } from "cloudflare:workers";

export class Hub extends DurableObject {
  async fetch(request) {
    if (new URL(request.url).pathname === "/ws") {
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server);
      return new Response(null, { status: 101, webSocket: client });
    }
    const body = await request.text();
    for (const ws of this.ctx.getWebSockets()) ws.send(body);
    return new Response(null, { status: 202 });
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const hub = () => env.HUB.get(env.HUB.idFromName("hub"));
    if (pathname === "/health") return new Response("ok");
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
