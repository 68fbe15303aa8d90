// The signaling messages the page sends and accepts: the same JSON as coalesce_common/protocol/messages.py.
// The box parses what the page sends with the strict Python codec; this side checks each message the box
// sends for what the page uses (its type, and its fields' types) before acting on it.

export const PROTOCOL_VERSION = 1;
export const MAX_MESSAGE_SIZE = 64 * 1024;

export class ProtocolError extends Error {
  constructor(message, code = "malformed") {
    super(message);
    this.code = code;
  }
}

const FIELDS = {
  challenge: { v: "number", receiver_name: "string", receiver_id: "string", pin_required: "boolean", spake: "string?" },
  waiting: { seconds: "number" },
  welcome: { share_id: "string", confirm: "string?" },
  denied: { reason: "string", message: "string", retry_after: "number?", replaceable: "boolean?" },
  answer: { sdp: "string", mac: "string?" },
  constraints: {
    track: "string", max_width: "number", max_height: "number", max_fps: "number", max_bitrate: "number", keyframe: "boolean?",
  },
  refused: { refused: "string", code: "string", message: "string" },
  bye: { reason: "string?" },
  error: { code: "string", message: "string" },
  room: null, // a moderator's view of the room: never asked for by the page, ignored
};

/** A message from the box as an object, or a ProtocolError saying what is wrong with it. */
export function parse(text) {
  if (typeof text !== "string" || text.length > MAX_MESSAGE_SIZE) throw new ProtocolError("the room sent an oversized message");
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    throw new ProtocolError("the room sent something that is not JSON");
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) throw new ProtocolError("the room sent a message that is not an object");
  if (!Object.hasOwn(FIELDS, message.type)) throw new ProtocolError(`the room sent an unknown message ${JSON.stringify(String(message.type)).slice(0, 40)}`);
  const fields = FIELDS[message.type] || {};
  for (const [name, kind] of Object.entries(fields)) {
    const optional = kind.endsWith("?");
    const value = message[name];
    if ((value === undefined || value === null) && optional) continue;
    if (typeof value !== kind.replace("?", "")) throw new ProtocolError(`the room's ${message.type} message has a bad ${name}`);
  }
  return message;
}

export function encode(type, fields = {}) {
  return JSON.stringify({ type, ...fields });
}

/** What a `denied` means to the person at the page: the app's sentences (coalesce_common/errors.py). */
export function deniedWords(denied, room) {
  const wait = denied.retry_after ? ` Too many attempts: retry in ${Math.max(1, Math.round(denied.retry_after))} s.` : "";
  switch (denied.reason) {
    case "wrong-pin":
      return `Wrong PIN: check the PIN shown on the room display.${wait}`;
    case "throttled":
      return `Too many attempts: retry in ${Math.max(1, Math.round(denied.retry_after || 1))} s.`;
    case "tampered":
      return `${room} saw another identity than you did: someone may be between you and the room display.`;
    case "declined":
      return `The moderator of ${room} declined your share.`;
    case "full":
      return `${room} is already showing the most shares it can; ask someone to stop first.`;
    case "locked":
      return `${room} is locked: no new shares can start until someone unlocks it in the room display's settings.`;
    case "version":
      return `${room} runs another version of Coalesce: reload this page, or ask for the room display to be updated.`;
    default:
      return `${room} refused the share.`;
  }
}

/** What a `bye` from the room means (EndReason.describe in Python); null when nothing needs saying. */
export function byeWords(reason, room) {
  switch (reason) {
    case "receiver-shutdown":
      return `${room} was switched off or restarted, so the share ended.`;
    case "dropped-by-room":
      return `${room} ended your share: someone stopped it at the room display.`;
    case "replaced":
      return `${room} was full, and someone who joined took the place of your share, the oldest one. Share again to take a place back.`;
    case "media-failed":
      return `The picture could not reach ${room} any more: the media connection failed. Share again; if it keeps failing, the network may block media between you.`;
    case "stopped":
      return null;
    default:
      return `${room} ended the share.`;
  }
}
