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
    // Conflated delivery (see below): channel -> Set of its class keys in use, and per class
    // the bases of its fresh sockets (fresh key -> conn -> [base seq, delta]).
    this.classes = new Map();
    this.bases = new Map();
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
    // A conflated subscription is left through its channel's keys too (see addConflated).
    if (this.classes.size !== 0) {
      const name = channel.endsWith("+delta") ? channel.slice(0, -6) : channel;
      if (this.classes.has(name)) this.removeConflated(name, conn);
    }
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

  // Conflated delivery (durable/src/core/conflation.rs decides, durable/src/hub/conflation.rs
  // ticks). A class is a channel at one interval, keyed `channel@ms`; its sockets in step sit
  // under that key (`+delta` for delta sockets), those that joined since its last tick under
  // `channel@ms~` with the seq they hold (their base). base < 0: the socket is in step.
  addConflated(channel, cls, conn, ws, expiry, delta, base) {
    let set = this.classes.get(channel);
    if (set === undefined) this.classes.set(channel, (set = new Set()));
    set.add(cls);
    if (base < 0) {
      this.add(delta ? cls + "+delta" : cls, conn, ws, expiry);
      return;
    }
    const fresh = cls + "~";
    this.add(fresh, conn, ws, expiry);
    let b = this.bases.get(fresh);
    if (b === undefined) this.bases.set(fresh, (b = new Map()));
    b.set(conn, [base, delta]);
  }

  // A socket leaves every class of `channel` it is in.
  removeConflated(channel, conn) {
    const set = this.classes.get(channel);
    if (set === undefined) return;
    for (const cls of set) {
      this.remove(cls, conn);
      this.remove(cls + "+delta", conn);
      const fresh = cls + "~";
      this.remove(fresh, conn);
      const b = this.bases.get(fresh);
      if (b !== undefined && b.delete(conn) && b.size === 0) this.bases.delete(fresh);
      if (this.classSize(cls) === 0) set.delete(cls);
    }
    if (set.size === 0) this.classes.delete(channel);
  }

  // A new grant's expiry for a socket's conflated subscription of `channel`, wherever it sits.
  reexpire(channel, conn, expiry) {
    const set = this.classes.get(channel);
    if (set === undefined) return;
    for (const cls of set) {
      for (const key of [cls, cls + "+delta", cls + "~"]) {
        const m = this.subs.get(key);
        if (m === undefined || !m.has(conn)) continue;
        let e = this.expiries.get(key);
        if (e === undefined) this.expiries.set(key, (e = new Map()));
        e.set(conn, expiry);
      }
    }
  }

  classSize(cls) {
    return this.count(cls) + this.count(cls + "+delta") + this.count(cls + "~");
  }

  // Every subscriber of `channel`: unconflated, delta and in each class.
  total(channel) {
    let n = this.count(channel) + this.count(channel + "+delta");
    const set = this.classes.get(channel);
    if (set !== undefined) for (const cls of set) n += this.classSize(cls);
    return n;
  }

  // The class keys of these (flushed) channels, whose ticks the flush may have to arm.
  classesOf(channels) {
    const out = [];
    if (this.classes.size === 0) return out;
    for (const c of channels) {
      const set = this.classes.get(c);
      if (set !== undefined) for (const cls of set) out.push(cls);
    }
    return out;
  }

  // One class's tick. full/delta: the in-step sockets' messages ("" when the channel has not
  // moved; delta "" when delta sockets get full). Fresh sockets whose base is below seq get the
  // full update with their own skipped count (head + count + tail, built once per base), then
  // are in step. Returns [failed sockets, sockets reached, messages built here, expired
  // sockets, sockets left in the class].
  tick(cls, full, delta, head, tail, seq, now) {
    const failed = [];
    const expired = [];
    let reached = 0;
    const send = (key, conn, ws, message) => {
      const e = this.expiries.get(key);
      const until = e === undefined ? undefined : e.get(conn);
      if (until !== undefined && until < now) {
        expired.push(ws);
        return;
      }
      try {
        ws.send(message);
        reached++;
      } catch {
        failed.push(ws);
      }
    };
    if (full !== "") {
      for (const [key, message] of [[cls, full], [cls + "+delta", delta === "" ? full : delta]]) {
        const m = this.subs.get(key);
        if (m !== undefined) for (const [conn, ws] of m) send(key, conn, ws, message);
      }
    }
    const fresh = cls + "~";
    const m = this.subs.get(fresh);
    const b = this.bases.get(fresh);
    const built = new Map();
    if (m !== undefined) {
      const e = this.expiries.get(fresh);
      for (const [conn, ws] of m) {
        const [base, isDelta] = b === undefined ? [-1, false] : b.get(conn) || [-1, false];
        // Any other seq than the tick's gets the full value: an older one, or one from before the
        // channel's epoch reset (then higher), which a patch against the class's value would
        // corrupt.
        if (base >= 0 && base !== seq) {
          let message = built.get(base);
          if (message === undefined) built.set(base, (message = head + Math.max(0, seq - base - 1) + tail));
          send(fresh, conn, ws, message);
        }
        const until = e === undefined ? undefined : e.get(conn);
        this.add(isDelta ? cls + "+delta" : cls, conn, ws, until === undefined ? -1 : until);
      }
      this.subs.delete(fresh);
      this.expiries.delete(fresh);
      this.bases.delete(fresh);
    }
    return [failed, reached, built.size, expired, this.classSize(cls)];
  }
}
