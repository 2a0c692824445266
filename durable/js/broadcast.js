// The hub's subscriber index and send loop, in JavaScript so that a broadcast crosses the wasm
// boundary once instead of once per socket (durable/src/hub/broadcast.rs is the Rust side).
// Subscribers are kept per channel as conn id -> socket; add and remove are O(1).
// A private channel's subscribers also have an expiry (Unix seconds: their token's exp plus the
// leeway), kept apart in `expiries` so public channels' send loops never look at one. A socket
// past its expiry is skipped and reported as expired instead of sent to: no frame of a private
// channel reaches a socket after its token expires, with no timer per socket.
export class Subscribers {
  constructor() {
    this.subs = new Map();
    this.expiries = new Map();
  }

  // expiry: -1 for a public channel's subscriber (anything else is a private channel's, and 0
  // is long past: a private subscriber without a grant gets nothing).
  add(channel, conn, ws, expiry) {
    let m = this.subs.get(channel);
    if (m === undefined) this.subs.set(channel, (m = new Map()));
    m.set(conn, ws);
    if (expiry >= 0) {
      let e = this.expiries.get(channel);
      if (e === undefined) this.expiries.set(channel, (e = new Map()));
      e.set(conn, expiry);
    }
  }

  remove(channel, conn) {
    const m = this.subs.get(channel);
    if (m !== undefined && m.delete(conn) && m.size === 0) this.subs.delete(channel);
    if (this.expiries.size === 0) return; // no private channel is held: nothing to look up
    const e = this.expiries.get(channel);
    if (e !== undefined && e.delete(conn) && e.size === 0) this.expiries.delete(channel);
  }

  count(channel) {
    const m = this.subs.get(channel);
    return m === undefined ? 0 : m.size;
  }

  // One flushed channel: the same message to every subscriber. Returns [sockets whose send
  // threw, [sockets reached], messages sent, sockets skipped as expired].
  sendOne(channel, message, now) {
    const failed = [];
    const expired = [];
    let reached = 0;
    const m = this.subs.get(channel);
    const e = this.expiries.get(channel);
    if (m !== undefined && e === undefined) {
      for (const ws of m.values()) {
        try {
          ws.send(message);
          reached++;
        } catch {
          failed.push(ws);
        }
      }
    } else if (m !== undefined) {
      for (const [conn, ws] of m) {
        const until = e.get(conn);
        if (until !== undefined && until < now) {
          expired.push(ws);
          continue;
        }
        try {
          ws.send(message);
          reached++;
        } catch {
          failed.push(ws);
        }
      }
    }
    return [failed, [reached], reached, expired];
  }

  // Several flushed channels: each socket gets one message with the frames of every flushed
  // channel it subscribes to. alone[i] is the message for a socket of channels[i] only; a socket
  // of several gets prefix + their parts joined by "," + suffix. Sockets with the same set share
  // one message, built once. Returns [failed sockets, sockets reached per channel, messages
  // sent, sockets skipped as expired (once per channel)].
  sendMany(channels, alone, parts, prefix, suffix, now) {
    const per = new Map();
    const expired = [];
    for (let i = 0; i < channels.length; i++) {
      const m = this.subs.get(channels[i]);
      if (m === undefined) continue;
      const ex = this.expiries.get(channels[i]);
      for (const [conn, ws] of m) {
        if (ex !== undefined) {
          const until = ex.get(conn);
          if (until !== undefined && until < now) {
            expired.push(ws);
            continue;
          }
        }
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
    return [failed, reached, sent, expired];
  }
}
