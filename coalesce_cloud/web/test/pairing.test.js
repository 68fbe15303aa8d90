// The JS pairing against the Python side's vectors (tests/web/vectors.py makes vectors.json): the same
// messages and keys from the same entropy, both sides' messages accepted by the other, the same MACs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { Spake2A, Spake2B, SpakeError } from "../src/spake2.js";
import { ID_RECEIVER, ID_SENDER, PairingError, PairingKey, SenderPairing, fingerprintDigestInput, toBase64 } from "../src/pairing.js";

const { vectors } = JSON.parse(readFileSync(new URL("./vectors.json", import.meta.url), "utf8"));
const pw = (pin) => new TextEncoder().encode(pin);

for (const v of vectors) {
  test(`SPAKE2 with PIN ${JSON.stringify(v.pin)} makes Python's messages and key`, () => {
    const a = new Spake2A(pw(v.pin), ID_SENDER, ID_RECEIVER, hexToBytes(v.entropy_a));
    const b = new Spake2B(pw(v.pin), ID_SENDER, ID_RECEIVER, hexToBytes(v.entropy_b));
    assert.equal(bytesToHex(a.start()), v.message_a);
    assert.equal(bytesToHex(b.start()), v.message_b);
    assert.equal(bytesToHex(a.finish(hexToBytes(v.message_b))), v.key); // JS A with Python B's message
    assert.equal(bytesToHex(b.finish(hexToBytes(v.message_a))), v.key); // JS B with Python A's message
  });

  test(`the MACs with PIN ${JSON.stringify(v.pin)} are Python's`, () => {
    const key = new PairingKey(hexToBytes(v.key));
    assert.equal(key.senderConfirm(), v.sender_confirm);
    assert.equal(key.senderBinding(v.binding), v.sender_binding);
    assert.equal(key.receiverConfirm(v.binding), v.receiver_confirm);
    assert.equal(key.offerMac(v.offer), v.offer_mac);
    assert.equal(key.answerMac(v.offer, v.answer), v.answer_mac);
    key.verifyReceiverConfirm(v.receiver_confirm, v.binding);
    key.verifyAnswerMac(v.offer, v.answer, v.answer_mac);
    assert.throws(() => key.verifyReceiverConfirm(v.receiver_confirm, "xmpp:someone>else"), PairingError);
    assert.throws(() => key.verifyAnswerMac(v.offer, v.offer, v.answer_mac), PairingError);
  });

  test(`the sender's pair message with PIN ${JSON.stringify(v.pin)} is what the room checks`, () => {
    const sender = new SenderPairing(v.pin, hexToBytes(v.entropy_a));
    const { pair } = sender.finish(toBase64(hexToBytes(v.message_b)), v.binding);
    assert.deepEqual(pair, {
      spake: toBase64(hexToBytes(v.message_a)),
      confirm: v.sender_confirm,
      binding: v.sender_binding,
    });
  });
}

test("a wrong PIN gives another key", () => {
  const [v] = vectors;
  const a = new Spake2A(pw("0000"), ID_SENDER, ID_RECEIVER, hexToBytes(v.entropy_a));
  a.start();
  assert.notEqual(bytesToHex(a.finish(hexToBytes(v.message_b))), v.key);
});

test("hostile SPAKE2 messages are refused with a pairing error, never an exception of another kind", () => {
  const [v] = vectors;
  const good = hexToBytes(v.message_b);
  const offCurve = good.slice();
  offCurve[5] ^= 0xff;
  const small = hexToBytes("42" + "01" + "00".repeat(31)); // the identity (y = 1)
  const torsion = hexToBytes("42" + "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"); // order 2
  for (const [what, message] of [
    ["its own side", hexToBytes(v.message_a)],
    ["short", good.subarray(0, 20)],
    ["zero", small],
    ["a small-order point", torsion],
    ["maybe off the curve", offCurve],
  ]) {
    const a = new Spake2A(pw(v.pin), ID_SENDER, ID_RECEIVER, hexToBytes(v.entropy_a));
    a.start();
    try {
      const key = a.finish(message);
      assert.notEqual(bytesToHex(key), v.key, what); // a tampered point that is valid gives another key
    } catch (err) {
      assert.ok(err instanceof SpakeError, `${what}: ${err}`);
    }
    const sender = new SenderPairing(v.pin);
    assert.throws(() => sender.finish(toBase64(message), v.binding), PairingError, what);
  }
  assert.throws(() => new SenderPairing(v.pin).finish("not base64!", v.binding), PairingError);
  assert.throws(() => fingerprintDigestInput("v=0\r\n"), PairingError);
});
