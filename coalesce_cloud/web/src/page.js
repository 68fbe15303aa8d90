// The sharing page: the form, the browser's screen picker, and one WebShare at a time.

import { encode } from "./protocol.js";
import { ShareError, WebShare, admit } from "./share.js";
import { CloudStream } from "./xmpp.js";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const state = { share: null, tracks: [], notice: "", lib: { CloudStream, admit, encode } };
window.coalesce = state; // for people debugging the page in the browser's console, and for its tests

function say(text, problem = false) {
  $("status").textContent = text || "";
  $("status").classList.toggle("problem", problem);
}

/** What the page shows: the form ("idle"), the form with Cancel while a share starts, Stop while sharing. */
function phase(name) {
  $("share-form").hidden = name === "sharing";
  $("share").disabled = name === "starting";
  $("sharing").hidden = name === "idle";
  $("stop").textContent = name === "starting" ? "Cancel" : "Stop sharing";
}

function remember(name) {
  try {
    if (name === undefined) return localStorage.getItem("coalesce.name") || "";
    localStorage.setItem("coalesce.name", name);
  } catch {
    /* storage blocked (private windows, policies): the name is simply not remembered */
  }
  return "";
}

function releaseTracks() {
  for (const track of state.tracks) track.stop();
  state.tracks = [];
}

const NO_SOUND =
  "No sound is shared: the browser offered none for what you picked. Chrome and Edge share a tab's sound (pick a tab and leave \"Share tab audio\" on); Firefox shares none. For your computer's sound, use the Coalesce app.";

async function pickMedia(wantSound, wantCamera) {
  let display;
  try {
    display = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 30 } },
      audio: wantSound,
      systemAudio: "include",
      selfBrowserSurface: "exclude",
      surfaceSwitching: "include",
    });
  } catch (error) {
    if (error && error.name === "NotAllowedError") throw new ShareError("Nothing was shared: you closed the picker, or the browser does not allow this page to share the screen.");
    throw new ShareError("The browser could not capture the screen. Try again, or pick a window or a tab instead.");
  }
  const screen = display.getVideoTracks()[0];
  screen.contentHint = "detail"; // slides and documents: sharp text first
  const sound = display.getAudioTracks()[0] || null;
  state.notice = wantSound && !sound ? NO_SOUND : "";
  let camera = null;
  if (wantCamera) {
    try {
      camera = (await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } } })).getVideoTracks()[0];
    } catch {
      state.notice = `${state.notice} The camera is not available (in use, or not allowed), so it is not shared.`.trim();
    }
  }
  state.tracks = [screen, sound, camera].filter(Boolean);
  return { screen, camera, sound };
}

async function onShare(event) {
  event.preventDefault();
  if (state.share) return;
  const meetingId = $("meeting").value.replace(/[\s-]/g, "");
  const pin = $("pin").value.trim();
  const name = $("name").value.trim();
  if (!/^\d{6,20}$/.test(meetingId)) return say("The meeting ID is the digits shown on the room display.", true);
  if (!/^\d{4,12}$/.test(pin)) return say("The PIN is the digits shown on the room display.", true);
  remember(name);
  state.notice = "";
  phase("starting");
  $("stop").hidden = true; // nothing to cancel while the browser's picker is up
  try {
    say("Pick what to share…");
    const media = await pickMedia($("sound").checked, $("camera").checked);
    $("stop").hidden = false;
    const share = (state.share = new WebShare({
      apiBase: "/api/v1",
      meetingId,
      pin,
      name,
      relay: query.get("relay") || "",
      onStatus: (text) => say(state.notice ? `${text} ${state.notice}` : text),
      onEnded: (words) => {
        state.share = null;
        releaseTracks();
        phase("idle");
        say(words || "You stopped sharing.", Boolean(words));
      },
    }));
    media.screen.addEventListener("ended", () => share.stop()); // the browser's own "Stop sharing"
    await share.start(media);
    if (!share.ended) phase("sharing");
  } catch (error) {
    state.share = null;
    releaseTracks();
    phase("idle");
    const words = error instanceof ShareError ? error.message : "The share could not be started. Reload the page and try again.";
    say(words, !(error instanceof ShareError && error.cancelled));
  }
}

function init() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia || !window.RTCPeerConnection) {
    $("unsupported").hidden = false;
    $("share").disabled = true;
  }
  $("name").value = remember();
  if (query.get("meeting")) $("meeting").value = query.get("meeting");
  $("share-form").addEventListener("submit", onShare);
  $("stop").addEventListener("click", () => state.share && state.share.stop());
  window.addEventListener("pagehide", () => state.share && state.share.stop());
}

init();
