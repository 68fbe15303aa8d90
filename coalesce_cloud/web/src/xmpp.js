// The cloud's signaling for the page: XMPP over WebSocket (RFC 7395) to ejabberd, through Strophe.js, with the
// short-lived guest identity the API issued. Protocol messages ride in
// <message type="headline"><signal xmlns="urn:coalesce:signaling:1" session="…" kind="data|close">JSON</signal>
// exactly as coalesce_common/signaling/xmpp.py sends them, so the box cannot tell the page from the app.

import { $msg, Strophe } from "strophe.js";

Strophe.setLogLevel(Strophe.LogLevel.ERROR); // Strophe's own steps are not for the page's console

export const NAMESPACE = "urn:coalesce:signaling:1";
const INBOX_LIMIT = 64;

export class SignalingError extends Error {}

/** The value pairing binds on the XMPP path: both bare JIDs, as channel_binding() in Python. */
export function channelBinding(sender, box) {
  return `xmpp:${Strophe.getBareJidFromJid(sender)}>${Strophe.getBareJidFromJid(box)}`;
}

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One conversation with the box (one share), over the page's single XMPP stream. */
export class Channel {
  #stream;
  #inbox = [];
  offline = false;
  #waiting = null;
  #closed = false;

  constructor(stream, peer, session) {
    this.#stream = stream;
    this.peer = peer;
    this.session = session;
    this.binding = channelBinding(stream.jid, peer);
  }

  send(text) {
    if (this.#closed || !this.#stream.connected) throw new SignalingError("The connection to the cloud was lost.");
    this.#stream.sendSignal(this.peer, this.session, "data", text);
  }

  /** The next message's text; null when the box closed the conversation or the stream went down. */
  recv(timeoutMs) {
    if (this.#inbox.length) return Promise.resolve(this.#inbox.shift());
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = timeoutMs
        ? setTimeout(() => {
            this.#waiting = null;
            reject(new SignalingError("The room display did not answer in time. Try again in a minute."));
          }, timeoutMs)
        : null;
      this.#waiting = (item) => {
        if (timer) clearTimeout(timer);
        resolve(item);
      };
    });
  }

  close(reason = "") {
    if (this.#closed) return;
    if (this.#stream.connected) this.#stream.sendSignal(this.peer, this.session, "close", reason.slice(0, 120));
    this.peerClosed();
  }

  deliver(from, kind, text) {
    this.peer = from; // after the first reply, talk to the box process that answered
    if (kind === "offline") {
      this.offline = true; // the server bounced a message: the box is not logged in
      return this.peerClosed();
    }
    if (kind === "close") return this.peerClosed();
    if (this.#inbox.length >= INBOX_LIMIT) return this.peerClosed();
    this.#push(text);
  }

  peerClosed() {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream.forget(this);
    this.#push(null);
  }

  #push(item) {
    if (this.#waiting) {
      const wake = this.#waiting;
      this.#waiting = null;
      wake(item);
    } else if (item !== null) {
      this.#inbox.push(item);
    }
  }
}

/** The page's XMPP stream: log in, open channels to the box, log out. */
export class CloudStream {
  #connection = null;
  #channels = new Map();
  #closing = false;
  connected = false;
  jid = "";
  onLost = null;

  /** Log in as `jid` at `url` (wss://…); rejects with words a person can act on. */
  connect(url, jid, password, timeoutMs = 15000) {
    if (!url) return Promise.reject(new SignalingError("This cloud has no browser signaling set up: ask its administrator."));
    this.jid = jid;
    const connection = (this.#connection = new Strophe.Connection(url, { protocol: "wss" }));
    connection.addHandler((stanza) => this.#onMessage(stanza), null, "message", "headline");
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => finish(new SignalingError("The cloud did not answer in time: check this network, then try again.")), timeoutMs);
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          this.#closing = true;
          connection.disconnect("failed"); // also a login that would still finish after the time-out
          reject(error);
        } else resolve();
      };
      connection.connect(jid, password, (status) => {
        if (status === Strophe.Status.CONNECTED) {
          this.connected = true;
          connection.send(Strophe.xmlElement("presence", { }));
          finish();
        } else if (status === Strophe.Status.AUTHFAIL) {
          finish(new SignalingError("The cloud refused this browser's sign-in; it may have expired. Reload the page and try again."));
        } else if (status === Strophe.Status.CONNFAIL || status === Strophe.Status.ERROR || status === Strophe.Status.CONNTIMEOUT) {
          finish(new SignalingError("Cannot reach the cloud's signaling service: check this network, then try again."));
        } else if (status === Strophe.Status.DISCONNECTED) {
          const wasConnected = this.connected;
          this.connected = false;
          for (const channel of [...this.#channels.values()]) channel.peerClosed();
          finish(new SignalingError("The cloud closed the connection while signing in. Try again."));
          if (wasConnected && !this.#closing && this.onLost) this.onLost();
        }
      });
    });
  }

  open(peer) {
    if (!this.connected) throw new SignalingError("Not connected to the cloud.");
    const channel = new Channel(this, peer, randomHex(16));
    this.#channels.set(`${Strophe.getBareJidFromJid(peer)} ${channel.session}`, channel);
    return channel;
  }

  sendSignal(peer, session, kind, text) {
    const message = $msg({ to: peer, type: "headline" }).c("signal", { xmlns: NAMESPACE, session, kind }).t(text);
    this.#connection.send(message.tree());
    this.#connection.flush();
  }

  forget(channel) {
    for (const [key, known] of this.#channels) if (known === channel) this.#channels.delete(key);
  }

  close() {
    if (!this.#connection || this.#closing) return;
    this.#closing = true;
    for (const channel of [...this.#channels.values()]) channel.close();
    this.#connection.disconnect("done");
    this.connected = false;
  }

  #onMessage(stanza) {
    const signal = stanza.getElementsByTagNameNS(NAMESPACE, "signal")[0];
    const from = stanza.getAttribute("from") || "";
    if (!signal) return true;
    const key = `${Strophe.getBareJidFromJid(from)} ${(signal.getAttribute("session") || "").slice(0, 64)}`;
    const channel = this.#channels.get(key);
    if (!channel) return true;
    if (stanza.getAttribute("type") === "error") channel.deliver(from, "offline", "");
    else channel.deliver(from, signal.getAttribute("kind") || "data", signal.textContent || "");
    return true; // keep the handler
  }
}
