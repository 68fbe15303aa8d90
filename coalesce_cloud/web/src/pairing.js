// The sender's half of Coalesce's PIN pairing, as coalesce_common/protocol/pairing.py does it: SPAKE2 keyed by
// the PIN, then HMAC-SHA256 confirmations that bind the key to the signaling channel and to both SDPs' DTLS
// fingerprints, so that nobody between the page and the room display (the cloud included) can sit in the
// media path unseen. The Python module's docstring explains each MAC.

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { Spake2A, SpakeError } from "./spake2.js";

const encoder = new TextEncoder();
export const ID_SENDER = encoder.encode("coalesce/1 sender");
export const ID_RECEIVER = encoder.encode("coalesce/1 receiver");
const FINGERPRINT = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/gm;

export class PairingError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

export function toBase64(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

export function fromBase64(text, what) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new PairingError(`pairing: ${what} is not base64`, "malformed");
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The sorted, normalised "algorithm VALUE" DTLS fingerprints of an SDP, joined by newlines. */
export function fingerprintDigestInput(sdp) {
  const found = new Set();
  for (const [, algorithm, value] of sdp.matchAll(FINGERPRINT)) found.add(`${algorithm.toLowerCase()} ${value.toUpperCase()}`);
  if (found.size === 0) throw new PairingError("the SDP carries no DTLS fingerprint", "bad-sdp");
  return encoder.encode([...found].sort().join("\n"));
}

function equal(a, b) {
  if (typeof a !== "string" || typeof b !== "string" || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export class PairingKey {
  #key;

  constructor(key) {
    this.#key = key;
  }

  mac(label, ...parts) {
    const pieces = [encoder.encode(label)];
    for (const part of parts) {
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, part.length);
      pieces.push(length, part);
    }
    return toBase64(hmac(sha256, this.#key, concatBytes(...pieces)));
  }

  senderConfirm() {
    return this.mac("sender-confirm");
  }

  senderBinding(tlsFingerprint) {
    return this.mac("sender-tls", encoder.encode(tlsFingerprint));
  }

  receiverConfirm(tlsFingerprint) {
    return this.mac("receiver-tls", encoder.encode(tlsFingerprint));
  }

  verifyReceiverConfirm(confirm, tlsFingerprint) {
    if (!equal(this.receiverConfirm(tlsFingerprint), confirm)) {
      throw new PairingError(
        "The room display is not the one the PIN vouches for: someone may be between you and it. The share was stopped.",
        "identity-mismatch",
      );
    }
  }

  offerMac(offerSdp) {
    return this.mac("offer-dtls", fingerprintDigestInput(offerSdp));
  }

  answerMac(offerSdp, answerSdp) {
    return this.mac("answer-dtls", fingerprintDigestInput(offerSdp), fingerprintDigestInput(answerSdp));
  }

  verifyAnswerMac(offerSdp, answerSdp, mac) {
    if (!equal(this.answerMac(offerSdp, answerSdp), mac)) {
      throw new PairingError(
        "The room display's media fingerprint is not the one the PIN vouches for: someone may be between you and it. The share was stopped.",
        "identity-mismatch",
      );
    }
  }
}

/** The sender's half: start with the PIN, finish with the receiver's SPAKE2 message (base64). */
export class SenderPairing {
  #spake;
  #message;

  constructor(pin, entropy) {
    this.#spake = new Spake2A(encoder.encode(pin), ID_SENDER, ID_RECEIVER, entropy);
    this.#message = this.#spake.start();
  }

  /** The `pair` message's fields and the session key; `channelBinding` is what the channel's TLS
   * fingerprint is on this path (for XMPP: channel_binding(sender JID, box JID)). */
  finish(receiverSpake, channelBinding) {
    const element = fromBase64(receiverSpake, "the receiver's SPAKE2 message");
    if (element.length !== this.#message.length) {
      throw new PairingError("pairing: the receiver's SPAKE2 message has the wrong length", "bad-pairing");
    }
    let key;
    try {
      key = new PairingKey(this.#spake.finish(element));
    } catch (err) {
      if (err instanceof SpakeError) throw new PairingError("pairing: the receiver's SPAKE2 message is invalid", "bad-pairing");
      throw err;
    }
    const pair = { spake: toBase64(this.#message), confirm: key.senderConfirm(), binding: key.senderBinding(channelBinding) };
    return { pair, key };
  }
}
