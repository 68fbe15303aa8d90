// SPAKE2 over Ed25519, interoperable with the Python `spake2` package (0.9) the app and the room display use.
//
// The group arithmetic is @noble/curves'; what is written here is only what makes the exchange match the
// Python side byte for byte:
// - the password's scalar: HKDF-SHA256(ikm=password, salt="", info="SPAKE2 pw") to 48 bytes, read big-endian,
//   reduced mod L;
// - a random scalar: 64 bytes read big-endian, reduced mod L;
// - M and N: the points the Python side derives from the seeds "M" and "N" (by try-and-increment, which
//   @noble does not do); their encodings are constants here, checked against Python by the test vectors;
// - a message: the side ("A" or "B") and the 32-byte point X = x·G + pw·M (A) or Y = y·G + pw·N (B);
// - the key: SHA-256 of SHA-256(pw) ‖ SHA-256(idA) ‖ SHA-256(idB) ‖ X ‖ Y ‖ K.

import { ed25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes, hexToBytes, randomBytes } from "@noble/hashes/utils.js";

const Point = ed25519.Point;
const L = ed25519.CURVE.n;

export const M = Point.fromBytes(hexToBytes("15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312"));
export const N = Point.fromBytes(hexToBytes("f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3"));
const SIDE_A = 0x41;
const SIDE_B = 0x42;

export class SpakeError extends Error {}

function bigEndian(bytes) {
  return bytes.length ? BigInt("0x" + bytesToHex(bytes)) : 0n;
}

function mod(value) {
  const r = value % L;
  return r >= 0n ? r : r + L;
}

export function passwordToScalar(password) {
  return mod(bigEndian(hkdf(sha256, password, new Uint8Array(0), new TextEncoder().encode("SPAKE2 pw"), 48)));
}

export function randomScalar(entropy = randomBytes(64)) {
  if (entropy.length !== 64) throw new SpakeError("a SPAKE2 scalar takes 64 bytes of entropy");
  return mod(bigEndian(entropy));
}

function times(point, scalar) {
  return scalar === 0n ? Point.ZERO : point.multiply(scalar);
}

/** A point the peer sent: on the curve, not zero, in the prime-order group (as Python's bytes_to_element). */
export function elementFromBytes(bytes) {
  let point;
  try {
    point = Point.fromBytes(bytes);
  } catch (err) {
    throw new SpakeError(`not a point on the curve: ${err.message}`);
  }
  if (point.is0()) throw new SpakeError("the element is zero");
  if (!point.isTorsionFree()) throw new SpakeError("the element is not in the right group");
  return point;
}

class Spake2 {
  constructor(side, password, idA, idB, entropy) {
    this.side = side;
    this.password = password;
    this.idA = idA;
    this.idB = idB;
    this.pwScalar = passwordToScalar(password);
    this.xyScalar = randomScalar(entropy);
    const blinding = side === SIDE_A ? M : N;
    this.outbound = times(Point.BASE, this.xyScalar).add(times(blinding, this.pwScalar)).toBytes();
    this.finished = false;
  }

  /** The message for the peer: the side byte and the point. */
  start() {
    return concatBytes(new Uint8Array([this.side]), this.outbound);
  }

  /** The shared 32-byte key from the peer's message; throws SpakeError on a hostile one. */
  finish(inbound) {
    if (this.finished) throw new SpakeError("finish() can only be called once");
    this.finished = true;
    const other = this.side === SIDE_A ? SIDE_B : SIDE_A;
    if (inbound.length !== 33 || inbound[0] !== other) throw new SpakeError("the message is not the other side's");
    const message = inbound.subarray(1);
    const element = elementFromBytes(message);
    if (bytesToHex(element.toBytes()) === bytesToHex(this.outbound)) throw new SpakeError("our own message came back");
    const unblinding = this.side === SIDE_A ? N : M;
    const K = times(element.add(times(unblinding, mod(-this.pwScalar))), this.xyScalar).toBytes();
    const [X, Y] = this.side === SIDE_A ? [this.outbound, message] : [message, this.outbound];
    return sha256(concatBytes(sha256(this.password), sha256(this.idA), sha256(this.idB), X, Y, K));
  }
}

/** The first side (the sender in Coalesce). ``entropy``: 64 bytes, for test vectors only. */
export class Spake2A extends Spake2 {
  constructor(password, idA, idB, entropy) {
    super(SIDE_A, password, idA, idB, entropy);
  }
}

/** The second side (the room display in Coalesce). */
export class Spake2B extends Spake2 {
  constructor(password, idA, idB, entropy) {
    super(SIDE_B, password, idA, idB, entropy);
  }
}
