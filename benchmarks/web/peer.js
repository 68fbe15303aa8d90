// The two ends of the browser baseline: what a Meet, Teams or Jitsi user's Chromium does with a shared
// screen. benchmarks/browser.py loads sender.html and receiver.html and moves the SDP between them with
// page.evaluate (one offer, one answer, candidates gathered first: nothing else crosses).
"use strict";

let pc = null;

// Resolves once every candidate is in the local description, so one SDP carries them all.
function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
  });
}

// Only the candidates on this end's own address (127.0.0.1, or its end of the case's veth): the
// benchmark's media never takes another path.
function onlyOn(sdp, address) {
  return sdp
    .split("\r\n")
    .filter((line) => !line.startsWith("a=candidate:") || line.includes(` ${address} `))
    .join("\r\n");
}

function connected(peer) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (peer.connectionState === "connected") resolve();
      if (peer.connectionState === "failed") reject(new Error("the peer connection failed"));
    };
    peer.addEventListener("connectionstatechange", check);
    check();
  });
}

async function localDescription(peer, address) {
  await peer.setLocalDescription();
  await gathered(peer);
  return onlyOn(peer.localDescription.sdp, address);
}
