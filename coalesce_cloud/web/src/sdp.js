// What the page changes in the room's SDP answer before giving it to the browser (nothing the pairing vouches for).

/**
 * The room's answer with a start bitrate for Chromium's video encoders (`x-google-start-bitrate`, read by
 * Chromium and ignored by other browsers). The room (aiortc) tells the sender its bandwidth estimate only
 * in REMB, which grows from what it receives; Chromium starts at 300 kbit/s, so a moving screen was sent at
 * about 1 fps for many seconds. The fingerprints the pairing vouches for are left as they are.
 */
export function withStartBitrate(sdp, kbps) {
  const lines = sdp.split("\r\n");
  const video = new Set();
  for (const line of lines) {
    const found = /^a=rtpmap:(\d+) (VP8|VP9|H264|AV1)\/90000/i.exec(line);
    if (found) video.add(found[1]);
  }
  const withFmtp = new Set();
  const out = lines.map((line) => {
    const found = /^a=fmtp:(\d+) /.exec(line);
    if (!found || !video.has(found[1])) return line;
    withFmtp.add(found[1]);
    return `${line};x-google-start-bitrate=${kbps}`;
  });
  return out
    .flatMap((line) => {
      const found = /^a=rtpmap:(\d+) /.exec(line);
      return found && video.has(found[1]) && !withFmtp.has(found[1]) ? [line, `a=fmtp:${found[1]} x-google-start-bitrate=${kbps}`] : [line];
    })
    .join("\r\n");
}
