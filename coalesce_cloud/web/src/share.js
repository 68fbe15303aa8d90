// One share from the browser to a room, as the app's Share does it (coalesce_client/services/share.py):
// a guest identity from the cloud's API, XMPP signaling through the cloud, the PIN pairing, then one
// offer and one answer whose DTLS fingerprints the pairing key vouches for, so the cloud cannot sit in
// the media path. Media goes peer to peer when it can, else through the cloud's TURN relays.

import { PairingError, SenderPairing } from "./pairing.js";
import { PROTOCOL_VERSION, ProtocolError, byeWords, deniedWords, encode, parse } from "./protocol.js";
import { withStartBitrate } from "./sdp.js";
import { CloudStream, SignalingError } from "./xmpp.js";

const ANSWER_TIMEOUT = 15000;
const GATHER_TIMEOUT = 5000;
const START_KBPS = 2500; // what the app's encoder starts at; the room's REMB and constraints move it from there

export class ShareError extends Error {
  constructor(message, { cancelled = false } = {}) {
    super(message);
    this.cancelled = cancelled;
  }
}

const ADMIT_TIMEOUT = 15000;
const MEDIA_TIMEOUT = 20000;

/** `POST /api/v1/web-guests`: the guest identity, TURN credentials and the box, or the API's own words. */
export async function admit(apiBase, meetingId, name) {
  let response;
  try {
    response = await fetch(`${apiBase}/web-guests`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ meeting_id: meetingId, name }),
      signal: AbortSignal.timeout(ADMIT_TIMEOUT),
    });
  } catch (error) {
    if (error && error.name === "TimeoutError") throw new ShareError("The Coalesce cloud did not answer in time: check this network, then try again.");
    throw new ShareError("Cannot reach the Coalesce cloud: check this network, then try again.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* an answer without JSON (a proxy's error page): said below */
  }
  if (response.ok && body) return body;
  if (response.status === 422) throw new ShareError("Check the meeting ID (the digits on the room display) and your name.");
  const words = body && body.error && typeof body.error.message === "string" ? body.error.message : null;
  if (response.status === 429) {
    const wait = Number(response.headers.get("Retry-After")) || 60;
    throw new ShareError(`Too many attempts from this network: retry in ${Math.max(1, Math.round(wait))} s.`);
  }
  throw new ShareError(words || "The Coalesce cloud could not take the share right now. Try again in a minute.");
}

function iceServers(turn, relay) {
  const servers = (turn && turn.servers) || [];
  return servers
    .map((server) => ({
      urls: relay === "tls" ? server.urls.filter((url) => url.startsWith("turns:")) : server.urls,
      username: server.username,
      credential: server.credential,
    }))
    .filter((server) => server.urls.length);
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT); // go with the candidates found so far
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class WebShare {
  /**
   * @param {object} options apiBase ("/api/v1"), meetingId, pin, name; relay: "" (P2P, else relayed),
   *   "only" (always relayed) or "tls" (relayed over TURN/TLS only, as on a network that lets only HTTPS out);
   *   onStatus(text) while it starts, onEnded(textOrNull) once a share that started has ended.
   */
  constructor(options) {
    this.options = options;
    this.room = "The room display";
    this.stream = null;
    this.channel = null;
    this.pc = null;
    this.senders = {};
    this.live = { screen: false, camera: false, sound: false };
    this.started = false;
    this.ended = false;
    this.endWords = null;
  }

  status(text) {
    if (this.options.onStatus && !this.ended) this.options.onStatus(text);
  }

  /** Start sharing `media` ({screen, camera, sound}: MediaStreamTracks or null); resolves once the room
   * receives it. Rejects with a ShareError whose message a person can act on (`cancelled` after stop()). */
  async start(media) {
    const { apiBase, meetingId, pin, name } = this.options;
    try {
      this.status("Finding the room…");
      const admitted = await admit(apiBase, meetingId, name);
      this.room = admitted.box.name || this.room;
      this.#check();
      this.stream = new CloudStream();
      this.stream.onLost = () =>
        this.#end("The connection to the Coalesce cloud was lost or ended by the cloud, so the share ended. Share again; if it is refused, ask the room's IT team.", null);
      await this.stream.connect(admitted.xmpp.websocket_url, admitted.xmpp.jid, admitted.xmpp.password);
      this.#check();
      this.channel = this.stream.open(admitted.box.jid);
      this.status(`Pairing with ${this.room}…`);
      const key = await this.#pair(pin, name, admitted.xmpp.jid);
      this.status(`Connecting to ${this.room}…`);
      await this.#negotiate(key, media, iceServers(admitted.turn, this.options.relay));
      this.#sendMedia();
      this.started = true;
      this.status(`Sharing to ${this.room}.`);
      this.#serve().catch(() => this.#end(`${this.room} sent something this page does not understand, so the share ended.`, null));
    } catch (error) {
      const ended = this.ended;
      this.ended = true;
      this.#teardown(null);
      if (ended) throw new ShareError(this.endWords || "You stopped sharing.", { cancelled: !this.endWords });
      throw this.#words(error);
    }
  }

  #check() {
    if (this.ended) throw new ShareError(this.endWords || "You stopped sharing.", { cancelled: !this.endWords });
  }

  /** Any failure as the sentence a person sees: never a browser's or a library's own text. */
  #words(error) {
    if (error instanceof ShareError || error instanceof SignalingError) return new ShareError(error.message);
    if (error instanceof ProtocolError) {
      return new ShareError(`${this.room} sent something this page does not understand, so the share was stopped. Reload the page and try again.`);
    }
    if (error instanceof PairingError) {
      if (error.code === "identity-mismatch") return new ShareError(error.message);
      return new ShareError(`${this.room}'s answer could not be checked, so the share was stopped to be safe. Reload the page and try again.`);
    }
    return new ShareError("The browser could not set up the connection to the room. Reload the page and try again.");
  }

  async #recv(timeout = ANSWER_TIMEOUT) {
    const text = await this.channel.recv(timeout);
    this.#check();
    if (text === null) {
      if (this.channel.offline) throw new ShareError(`${this.room} is not connected to the cloud right now: check that it is switched on, then try again.`);
      throw new ShareError(`The connection to ${this.room} was lost. Share again.`);
    }
    const message = parse(text);
    if (message.type === "error") {
      if (message.code === "tampered") throw new ShareError(`${this.room} saw another identity than this page did: someone may be between you and the room display. The share was stopped.`);
      throw new ShareError(`${this.room} could not accept the share from this page. Reload the page and try again; if it keeps failing, use the Coalesce app.`);
    }
    if (message.type === "bye") throw new ShareError(byeWords(message.reason, this.room) || `${this.room} ended the share.`);
    return message;
  }

  #expect(message, ...types) {
    if (message.type === "denied") throw new ShareError(deniedWords(message, this.room));
    if (!types.includes(message.type)) throw new ProtocolError(`unexpected ${message.type}`, "out-of-order");
    return message;
  }

  async #pair(pin, name, jid) {
    const senderId = jid.split("@")[0].slice(0, 64);
    this.channel.send(encode("hello", { v: PROTOCOL_VERSION, sender_name: name, sender_id: senderId, role: "presenter", replace_oldest: false }));
    const challenge = this.#expect(await this.#recv(), "challenge");
    this.room = challenge.receiver_name || this.room;
    if (!challenge.pin_required || !challenge.spake) {
      // Without the PIN nothing ties this connection to the room: whoever relays it could be in the middle.
      throw new ShareError(
        `${this.room} says it needs no PIN, but this page shares only to rooms that check one, so nothing was shared. Use the Coalesce app, or ask the room's IT team to set a PIN.`,
      );
    }
    const { pair, key } = new SenderPairing(pin).finish(challenge.spake, this.channel.binding);
    this.channel.send(encode("pair", pair));
    let answer = this.#expect(await this.#recv(), "welcome", "waiting");
    while (answer.type === "waiting") {
      this.status(`Waiting for ${this.room} to let you in…`);
      answer = this.#expect(await this.#recv(answer.seconds * 1000 + ANSWER_TIMEOUT), "welcome", "waiting");
    }
    key.verifyReceiverConfirm(answer.confirm, this.channel.binding);
    this.shareId = answer.share_id;
    return key;
  }

  async #negotiate(key, media, servers) {
    const relay = this.options.relay;
    const pc = (this.pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: relay ? "relay" : "all" }));
    const tracks = {};
    for (const [section, kind] of [["screen", "video"], ["camera", "video"], ["sound", "audio"]]) {
      const track = media[section] || null;
      const transceiver = pc.addTransceiver(track || kind, { direction: "sendonly" });
      if (!track) await transceiver.sender.replaceTrack(null);
      this.senders[section] = transceiver.sender;
      this.live[section] = Boolean(track);
      tracks[section] = transceiver;
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    this.#check();
    const sdp = pc.localDescription.sdp;
    const sections = {};
    for (const [section, transceiver] of Object.entries(tracks)) sections[String(transceiver.mid)] = section;
    this.channel.send(encode("offer", { sdp, tracks: sections, mac: key.offerMac(sdp) }));
    const answer = this.#expect(await this.#recv(), "answer");
    key.verifyAnswerMac(sdp, answer.sdp, answer.mac);
    await pc.setRemoteDescription({ type: "answer", sdp: withStartBitrate(answer.sdp, START_KBPS) });
    await this.#connected(pc);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.#end(byeWords("media-failed", this.room), "media-failed");
    });
  }

  /** Resolves once media flows to the room; a connection that fails or never comes up is said in words. */
  #connected(pc) {
    const failed = () => new ShareError(`The picture could not reach ${this.room}: the network may block media between you. Try again, or from another network.`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(failed()), MEDIA_TIMEOUT);
      const look = () => {
        if (pc.connectionState === "connected") {
          clearTimeout(timer);
          resolve();
        } else if (["failed", "closed"].includes(pc.connectionState)) {
          clearTimeout(timer);
          reject(failed());
        }
      };
      pc.addEventListener("connectionstatechange", look);
      look();
    });
  }

  #sendMedia() {
    this.channel.send(encode("media", { screen: this.live.screen, camera: this.live.camera, paused: false, sound: this.live.sound }));
  }

  /** The room's messages while sharing: constraints applied, a bye or a lost channel ends the share. */
  async #serve() {
    while (!this.ended) {
      const text = await this.channel.recv(0);
      if (this.ended) return;
      if (text === null) return this.#end(`The connection to ${this.room} was lost, so the share ended. Share again.`, null);
      let message;
      try {
        message = parse(text);
      } catch (error) {
        try {
          this.channel.send(encode("error", { code: error.code || "malformed", message: error.message.slice(0, 500) }));
        } catch {
          /* the channel is gone: the share ends all the same */
        }
        return this.#end(`${this.room} sent something this page does not understand, so the share ended.`, null);
      }
      if (message.type === "bye") return this.#end(byeWords(message.reason, this.room), null);
      if (message.type === "error") return this.#end(`${this.room} ended the share after an error. Share again.`, null);
      if (message.type === "constraints") await this.#constrain(message);
    }
  }

  async #constrain(constraints) {
    const sender = this.senders[constraints.track];
    if (!sender || !sender.track) return;
    const parameters = sender.getParameters();
    if (!parameters.encodings || !parameters.encodings.length) return;
    const settings = sender.track.getSettings();
    const scale = Math.max(1, (settings.width || 0) / constraints.max_width, (settings.height || 0) / constraints.max_height);
    const encoding = parameters.encodings[0];
    encoding.maxBitrate = constraints.max_bitrate;
    encoding.maxFramerate = constraints.max_fps;
    encoding.scaleResolutionDownBy = scale;
    try {
      await sender.setParameters(parameters);
    } catch {
      /* a browser that refuses a limit sends as it would: the room scales what it gets */
    }
  }

  /** Stop from the page (Stop or Cancel, the browser's own "Stop sharing", or the tab closing). */
  stop() {
    this.#end(null, "stopped");
  }

  /** End the share: `words` for the person (null: they ended it), `reason` for the room's bye (null: none). */
  #end(words, reason) {
    if (this.ended) return;
    this.ended = true;
    this.endWords = words;
    this.#teardown(reason);
    if (this.started && this.options.onEnded) this.options.onEnded(words);
  }

  #teardown(reason) {
    try {
      if (reason && this.channel && this.shareId) this.channel.send(encode("bye", { reason }));
    } catch {
      /* the channel is gone already */
    }
    if (this.channel) this.channel.close(reason || "");
    if (this.pc) this.pc.close();
    if (this.stream) this.stream.close();
  }
}
