// One share from the browser to a room, as the app's Share does it (coalesce_client/services/share.py):
// a guest identity from the cloud's API, XMPP signaling through the cloud, the PIN pairing, then one
// offer and one answer whose DTLS fingerprints the pairing key vouches for, so the cloud cannot sit in
// the media path. Media goes peer to peer when it can, else through the cloud's TURN relays.

import { SenderPairing } from "./pairing.js";
import { PROTOCOL_VERSION, ProtocolError, byeWords, deniedWords, encode, parse } from "./protocol.js";
import { CloudStream } from "./xmpp.js";

const ANSWER_TIMEOUT = 15000;
const GATHER_TIMEOUT = 5000;

export class ShareError extends Error {}

/** `POST /api/v1/web-guests`: the guest identity, TURN credentials and the box, or the API's own words. */
export async function admit(apiBase, meetingId, name) {
  let response;
  try {
    response = await fetch(`${apiBase}/web-guests`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ meeting_id: meetingId, name }),
    });
  } catch {
    throw new ShareError("Cannot reach the Coalesce cloud: check this network, then try again.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* an answer without JSON: said below */
  }
  if (response.ok && body) return body;
  if (response.status === 422) throw new ShareError("Check the meeting ID (the digits on the room display) and your name.");
  const words = body && body.error && typeof body.error.message === "string" ? body.error.message : null;
  if (response.status === 429) {
    const wait = Number(response.headers.get("Retry-After")) || 60;
    throw new ShareError(`Too many attempts from this network: retry in ${Math.max(1, Math.round(wait))} s.`);
  }
  throw new ShareError(words || `The Coalesce cloud could not take the share (HTTP ${response.status}). Try again in a minute.`);
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
   *   onStatus(text) and onEnded(textOrNull) tell the page what happens.
   */
  constructor(options) {
    this.options = options;
    this.room = "The room display";
    this.stream = null;
    this.channel = null;
    this.pc = null;
    this.senders = {};
    this.live = { screen: false, camera: false, sound: false };
    this.ended = false;
    this.startedAt = performance.now();
  }

  status(text) {
    if (this.options.onStatus) this.options.onStatus(text);
  }

  /** Start sharing `media` ({screen, camera, sound}: MediaStreamTracks or null); resolves once sharing. */
  async start(media) {
    const { apiBase, meetingId, pin, name } = this.options;
    try {
      this.status("Finding the room…");
      const admitted = await admit(apiBase, meetingId, name);
      this.room = admitted.box.name || this.room;
      this.stream = new CloudStream();
      this.stream.onLost = () => this.#end("The connection to the Coalesce cloud was lost, so the share ended. Share again.");
      await this.stream.connect(admitted.xmpp.websocket_url, admitted.xmpp.jid, admitted.xmpp.password);
      this.channel = this.stream.open(admitted.box.jid);
      this.status(`Pairing with ${this.room}…`);
      const key = await this.#pair(pin, name, admitted.xmpp.jid);
      this.status(`Connecting to ${this.room}…`);
      await this.#negotiate(key, media, iceServers(admitted.turn, this.options.relay));
      this.#sendMedia();
      this.status(`Sharing to ${this.room}.`);
      this.#serve();
    } catch (error) {
      this.#teardown("failed");
      this.ended = true;
      if (error instanceof ShareError) throw error;
      if (error instanceof ProtocolError) throw new ShareError(`${this.room} sent something this page does not understand, so the share was stopped. Reload the page and try again.`);
      if (error && error.code === "identity-mismatch") throw new ShareError(error.message);
      throw new ShareError(error && error.message ? error.message : "The share could not be started. Try again.");
    }
  }

  async #recv(timeout = ANSWER_TIMEOUT) {
    const text = await this.channel.recv(timeout);
    if (text === null) throw new ShareError(`The connection to ${this.room} was lost. Share again.`);
    const message = parse(text);
    if (message.type === "error") throw new ShareError(`${this.room} could not accept the share (${message.message}). Reload the page and try again.`);
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
    let key = null;
    if (challenge.pin_required) {
      if (!challenge.spake) throw new ProtocolError("a challenge without SPAKE2");
      const finished = new SenderPairing(pin).finish(challenge.spake, this.channel.binding);
      key = finished.key;
      this.channel.send(encode("pair", finished.pair));
    } else {
      this.channel.send(encode("pair", {}));
    }
    let answer = this.#expect(await this.#recv(), "welcome", "waiting");
    while (answer.type === "waiting") {
      this.status(`Waiting for ${this.room} to let you in…`);
      answer = this.#expect(await this.#recv(answer.seconds * 1000 + ANSWER_TIMEOUT), "welcome", "waiting");
    }
    if (key) key.verifyReceiverConfirm(answer.confirm, this.channel.binding);
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
    const sdp = pc.localDescription.sdp;
    const sections = {};
    for (const [section, transceiver] of Object.entries(tracks)) sections[String(transceiver.mid)] = section;
    this.channel.send(encode("offer", { sdp, tracks: sections, mac: key ? key.offerMac(sdp) : null }));
    const answer = this.#expect(await this.#recv(), "answer");
    if (key) key.verifyAnswerMac(sdp, answer.sdp, answer.mac);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") this.#end(byeWords("media-failed", this.room), "media-failed");
    });
  }

  #sendMedia() {
    this.channel.send(encode("media", { screen: this.live.screen, camera: this.live.camera, paused: false, sound: this.live.sound }));
  }

  /** The room's messages while sharing: constraints applied, a bye or a lost channel ends the share. */
  async #serve() {
    while (!this.ended) {
      let text;
      try {
        text = await this.channel.recv(0);
      } catch {
        text = null;
      }
      if (this.ended) return;
      if (text === null) return this.#end(`The connection to ${this.room} was lost, so the share ended. Share again.`, "connection-lost");
      let message;
      try {
        message = parse(text);
      } catch (error) {
        this.channel.send(encode("error", { code: error.code || "malformed", message: error.message.slice(0, 500) }));
        return this.#end(`${this.room} sent something this page does not understand, so the share ended.`, "protocol-error");
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

  /** Stop from the page (Stop, the browser's own "Stop sharing", or the tab closing). */
  stop() {
    if (this.ended) return;
    this.#end(null, "stopped");
  }

  #end(words, reason) {
    if (this.ended) return;
    this.ended = true;
    this.#teardown(reason);
    if (this.options.onEnded) this.options.onEnded(words);
  }

  #teardown(reason) {
    try {
      if (reason && this.channel && this.shareId) this.channel.send(encode("bye", { reason: reason === "failed" ? "failed" : reason }));
    } catch {
      /* the channel is gone already */
    }
    if (this.channel) this.channel.close(reason || "");
    if (this.pc) this.pc.close();
    if (this.stream) this.stream.close();
  }
}
