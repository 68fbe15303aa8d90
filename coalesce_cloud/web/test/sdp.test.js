// The answer munging: every video codec gets Chromium's start bitrate, audio and fingerprints stay as they were.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fingerprintDigestInput } from "../src/pairing.js";
import { withStartBitrate } from "../src/sdp.js";

const ANSWER = [
  "v=0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "a=rtpmap:111 opus/48000/2",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102",
  "a=fingerprint:sha-256 AB:CD:EF",
  "a=rtpmap:96 VP8/90000",
  "a=rtpmap:97 rtx/90000",
  "a=fmtp:97 apt=96",
  "a=rtpmap:102 H264/90000",
  "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f",
  "",
].join("\r\n");

test("video codecs get a start bitrate, the rest is unchanged", () => {
  const munged = withStartBitrate(ANSWER, 2500);
  const lines = munged.split("\r\n");
  assert.ok(lines.includes("a=fmtp:96 x-google-start-bitrate=2500"), munged);
  assert.ok(lines.includes("a=fmtp:102 packetization-mode=1;profile-level-id=42e01f;x-google-start-bitrate=2500"), munged);
  assert.ok(lines.includes("a=fmtp:111 minptime=10;useinbandfec=1"), munged); // audio untouched
  assert.ok(lines.includes("a=fmtp:97 apt=96"), munged); // rtx untouched
  assert.deepEqual(fingerprintDigestInput(munged), fingerprintDigestInput(ANSWER));
  assert.equal(lines.indexOf("a=fmtp:96 x-google-start-bitrate=2500"), lines.indexOf("a=rtpmap:96 VP8/90000") + 1);
});
