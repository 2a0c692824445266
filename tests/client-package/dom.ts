// Type-checked with the DOM library (tests/client-package/check.mjs, tsconfig "bundler"): a
// browser app hands the page's own WebSocket and fetch to @tickwire/client, and they must fit the
// options' types (which the declarations spell without the DOM, for apps that do not load it).
import { TickwireClient } from "@tickwire/client";
import type { FetchFunction, WebSocketConstructor, WebSocketLike } from "@tickwire/client";

const Socket: WebSocketConstructor = WebSocket;
const fetcher: FetchFunction = fetch;
const open: WebSocketLike = new WebSocket("wss://tw.example/ws");
export const tw = new TickwireClient(undefined, { WebSocket, fetch: window.fetch.bind(window), channels: ["btc"] });
export const again = new TickwireClient(location.origin, { WebSocket: Socket, fetch: fetcher });
tw.on("update", ({ channel, data }) => {
  document.title = `${channel}: ${JSON.stringify(data)}`;
});
void open;
