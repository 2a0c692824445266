// The hub's subscriber index and send loop, in JavaScript so that a broadcast crosses the wasm
// boundary once instead of once per socket (durable/src/hub/broadcast.rs is the Rust side).
// Subscribers are kept per channel as conn id -> socket; add and remove are O(1).
export class Subscribers {
  constructor() {
    this.subs = new Map();
  }

  add(channel, conn, ws) {
    let m = this.subs.get(channel);
    if (m === undefined) this.subs.set(channel, (m = new Map()));
    m.set(conn, ws);
  }

  remove(channel, conn) {
    const m = this.subs.get(channel);
    if (m !== undefined && m.delete(conn) && m.size === 0) this.subs.delete(channel);
  }

  count(channel) {
    const m = this.subs.get(channel);
    return m === undefined ? 0 : m.size;
  }

  // One flushed channel: the same message to every subscriber. Returns [sockets whose send
  // threw, [sockets reached], messages sent].
  sendOne(channel, message) {
    const failed = [];
    let reached = 0;
    const m = this.subs.get(channel);
    if (m !== undefined) {
      for (const ws of m.values()) {
        try {
          ws.send(message);
          reached++;
        } catch {
          failed.push(ws);
        }
      }
    }
    return [failed, [reached], reached];
  }

  // Several flushed channels: each socket gets one message with the frames of every flushed
  // channel it subscribes to. alone[i] is the message for a socket of channels[i] only; a socket
  // of several gets prefix + their parts joined by "," + suffix. Sockets with the same set share
  // one message, built once. Returns [failed sockets, sockets reached per channel, messages
  // sent].
  sendMany(channels, alone, parts, prefix, suffix) {
    const per = new Map();
    for (let i = 0; i < channels.length; i++) {
      const m = this.subs.get(channels[i]);
      if (m === undefined) continue;
      for (const [conn, ws] of m) {
        const e = per.get(conn);
        if (e === undefined) per.set(conn, [ws, [i]]);
        else e[1].push(i);
      }
    }
    const built = new Map();
    const failed = [];
    const reached = channels.map(() => 0);
    let sent = 0;
    for (const [ws, idx] of per.values()) {
      const key = idx.join(",");
      let msg = built.get(key);
      if (msg === undefined) {
        msg = idx.length === 1 ? alone[idx[0]] : prefix + idx.map((i) => parts[i]).join(",") + suffix;
        built.set(key, msg);
      }
      try {
        ws.send(msg);
        sent++;
        for (const i of idx) reached[i]++;
      } catch {
        failed.push(ws);
      }
    }
    return [failed, reached, sent];
  }
}
