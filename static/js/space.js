// The space page: one socket to /ws/spaces/<id>/, a Room kept from its events, the grid rendered
// from the Room, and the live audio (binary frames on the same socket) driven by the Room's state.
import { missingAudioSupport, missingMicrophoneSupport, SpaceAudio } from "./spaces/audio.js";
import { Room } from "./spaces/room.js";
import { floatReaction, log, render, showAudioStatus, showEnded, showLevels, showStatus } from "./spaces/view.js";

const root = document.getElementById("space");
const room = new Room(Number(root.dataset.userId));
const CLOSE_REASONS = {
  4000: "You left the space.",
  4001: "You were removed from the space.",
  4002: "You were removed and cannot come back.",
  4401: "Please log in again.",
  4403: "You cannot join this space.",
  4404: "This space does not exist.",
  4409: "This space is full.",
  4410: "This space has ended.",
};
// Closes that nobody meant (docs/protocol.md, "Reconnecting"): the network dropped (1006), the
// server went away or failed (1001, 1011–1014), or it lost track of us (4408). Every other code
// was meant — left, removed, banned, forbidden, ended, flooding — and the page stays closed.
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014, 4408, 4411]);
// A join ticket (docs/protocol.md, "Join tickets"): the page's for the first socket, a new one
// from the API for each reconnect. Without one (the API unreachable) the session cookie serves.
let joinTicket = root.dataset.joinTicket || null;
const RETRY_FIRST = 500;
const RETRY_MAX = 15000;
let socket = null;
let retryDelay = RETRY_FIRST;
let retryTimer = null;
let closedForGood = false;
let audio = null;
let microphoneRefused = false;
// A newer tab or device of ours joined: it speaks for us, this page only listens (until the
// next snapshot: a reconnect makes this page the newest again).
let superseded = false;
let joins = 0; // snapshots received: 1 + the reconnects that came through

async function freshTicket() {
  try {
    const response = await fetch(root.dataset.apiUrl + "ticket/", {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    return response.ok ? (await response.json()).ticket : null;
  } catch {
    return null;
  }
}

// "retry after 3 s" (close 1013: the server's join line is full): how long it asks us to wait.
function retryAfterMs(event) {
  const match = event.code === 1013 && /retry after (\d+) s/.exec(event.reason || "");
  return match ? Number(match[1]) * 1000 : 0;
}

async function connect() {
  retryTimer = null;
  const ticket = joinTicket ?? (await freshTicket());
  joinTicket = null; // used once: a reconnect asks for a new one
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = ticket ? `?ticket=${encodeURIComponent(ticket)}` : "";
  socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}${query}`);
  socket.binaryType = "arraybuffer";
  audio?.resetStream();
  showStatus(root, "Connecting…");
  root.dataset.connection = "connecting";
  socket.addEventListener("message", (message) => {
    if (typeof message.data !== "string") {
      audio?.receive(message.data);
      return;
    }
    onEvent(JSON.parse(message.data));
  });
  socket.addEventListener("close", (event) => {
    // Whatever happens next, nothing more leaves this page until a snapshot says we may speak.
    audio?.setSending(false);
    if (!RECONNECT_CODES.has(event.code) || closedForGood) {
      closedForGood = true;
      audio?.closeMicrophone();
      root.dataset.connection = "closed";
      if (event.code === 4410 && room.space) {
        // Ended while we were not told (or told just now): the ended page, not the live room.
        room.space.state = "ended";
        showEnded(root, room);
        return;
      }
      showStatus(root, event.reason || CLOSE_REASONS[event.code] || "Disconnected.");
      root.querySelector('[data-role="controls"]').replaceChildren();
      root.querySelector('[data-role="host-controls"]').hidden = true;
      return;
    }
    root.dataset.connection = "reconnecting";
    showStatus(root, "Connection lost, reconnecting…");
    // Random: every listener of a restarted server would otherwise come back at the same moment.
    // A full join line says when to come back: at least that long, spread over as long again.
    const asked = retryAfterMs(event);
    const wait = asked ? asked * (1 + Math.random()) : retryDelay * (0.5 + Math.random() / 2);
    retryTimer = setTimeout(connect, wait);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX);
  });
}

// Back on the network: no need to wait out the back-off.
window.addEventListener("online", () => {
  if (retryTimer === null) return;
  clearTimeout(retryTimer);
  connect();
});

function onEvent(event) {
  if (event.type === "error") {
    // Frames already in flight when a moderator muted us: expected, not worth a message.
    if (event.code !== "not_publishing") showStatus(root, event.message);
    return;
  }
  if (event.type === "reaction") {
    const p = room.participants.get(event.user_id);
    floatReaction(root, event.emoji, p ? p.name : "", event.user_id);
    return;
  }
  if (event.type === "stream.superseded") {
    superseded = true;
    audio?.setSending(false);
    audio?.closeMicrophone();
    showStatus(root, "You are in this space from another tab or device: it speaks for you, this page only listens. Reload it to speak from here.");
    return;
  }
  if (event.type === "uplink.quality") {
    // Loss the server measured on what we publish: the encoder adds in-band FEC while it lasts.
    audio?.setUplinkLoss(event.loss_percent);
    return;
  }
  if (event.type === "levels") {
    room.apply(event);
    showLevels(root, room);
    return;
  }
  if (event.type === "snapshot") {
    retryDelay = RETRY_FIRST;
    superseded = false;
    joins += 1;
    root.dataset.connection = "connected";
    showStatus(root, "You are in the space.");
  }
  log(root, room.apply(event));
  if (event.type === "space.ended") {
    closedForGood = true; // the close (4410) that follows is not a drop
    audio?.setSending(false);
    audio?.closeMicrophone();
    showEnded(root, room);
    return;
  }
  render(root, room);
  syncAudio();
}

// --- Audio ---------------------------------------------------------------------------------------

// Speakers (and hosts, co-hosts) hold the microphone; it is released on demotion, removal or
// leaving. Frames go out only while the server's view of us says unmuted, so none is refused.
async function syncAudio() {
  if (!audio) return;
  if (room.space) audio.followMix(room.space.audio_mode); // listeners too: stereo playback
  const me = room.me;
  const onStage = !!me && me.role !== "listener" && room.space?.state === "live" && !superseded;
  if (!onStage) {
    audio.setSending(false);
    audio.closeMicrophone();
    return;
  }
  try {
    // Before opening the microphone: it opens with the mode's voice processing.
    await audio.setAudioMode(room.space.audio_mode);
  } catch (error) {
    microphoneRefused = true;
    showAudioStatus(root, `The microphone is not available (${error.name}): others cannot hear you.`);
    return;
  }
  // Our role may have changed while the microphone was opened again.
  const current = room.me;
  if (!current || current.role === "listener" || superseded) {
    audio.setSending(false);
    audio.closeMicrophone();
    return;
  }
  audio.setSending(!current.is_muted);
  if (audio.hasMicrophone || microphoneRefused) return;
  const missing = missingMicrophoneSupport();
  if (missing) {
    microphoneRefused = true;
    showAudioStatus(root, `${missing} You can still listen.`);
    return;
  }
  try {
    await audio.openMicrophone();
    showAudioStatus(root, "");
  } catch (error) {
    microphoneRefused = true;
    showAudioStatus(root, `The microphone is not available (${error.name}): others cannot hear you.`);
    return;
  }
  // Our role may have changed while the browser asked for permission.
  const now = room.me;
  if (!now || now.role === "listener") audio.closeMicrophone();
}

function sendAudio(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(frame);
}

function showListenButton() {
  root.querySelector('[data-role="listen"]').hidden = !audio?.blocked;
}

async function startAudio() {
  const missing = missingAudioSupport();
  if (missing) {
    showAudioStatus(root, missing);
    return;
  }
  // window.salonPlayout = "fixed" (set by bench/bench_mouth_to_ear.py before the page loads)
  // selects the pre-#16 playout, the bench's baseline.
  audio = new SpaceAudio({ send: sendAudio, onStateChange: showListenButton, playout: window.salonPlayout });
  try {
    await audio.start();
  } catch (error) {
    audio = null;
    showAudioStatus(root, `Live audio could not start (${error.message}).`);
    return;
  }
  // Test and diagnostics hook, read by tests/e2e/test_space_audio.py: what this page plays,
  // measured by an AnalyserNode (dominantFrequency() in Hz or null when silent; bandLevel(hz) in
  // dBFS within ±10 Hz), counters (frames received, lost, sent), whether a newer tab of ours
  // took the stream (superseded), how often the page joined (joins), the audio mode the uplink
  // uses and the microphone's voice processing, and the worklet buffer.
  window.salonAudio = {
    dominantFrequency: () => audio.dominantFrequency(),
    bandLevel: (hz) => audio.bandLevel(hz),
    stats: () => ({ ...audio.stats, state: audio.context.state, microphone: audio.hasMicrophone, sending: audio.sending, superseded, joins, audioMode: audio.audioMode, channels: audio.channels, microphoneProcessing: audio.microphoneProcessing() }),
    bufferStats: () => audio.bufferStats(),
    onsets: () => audio.onsets(),
    record: (seconds) => audio.record(seconds),
    recording: () => audio.recording(),
    encoderConfig: () => audio.encoderConfig(),
    // Tests inject socket events through the page's own dispatch (e.g. uplink.quality).
    dispatch: (event) => onEvent(event),
  };
  syncAudio();
}

root.querySelector('[data-role="listen"]').addEventListener("click", async () => {
  await audio?.resume();
  showListenButton();
});

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

root.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-command], button[data-action]");
  if (!button) return;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  if (button.dataset.action === "recording") {
    send({ type: "recording.set", is_recording: !room.space.is_recording });
    return;
  }
  if (button.dataset.action === "audio-mode") {
    send({ type: "audio_mode.set", audio_mode: room.space.audio_mode === "speech" ? "music" : "speech" });
    return;
  }
  if (button.dataset.action === "audio-stereo") {
    send({ type: "audio_mode.set", audio_mode: room.space.audio_mode === "music_stereo" ? "music" : "music_stereo" });
    return;
  }
  const message = { type: button.dataset.command };
  if (button.dataset.userId) message.user_id = Number(button.dataset.userId);
  if (button.dataset.ban) message.ban = true;
  if (button.dataset.emoji) message.emoji = button.dataset.emoji;
  if (button.dataset.muted) message.muted = button.dataset.muted === "true";
  if (message.type === "leave") {
    closedForGood = true;
    audio?.closeMicrophone();
  }
  // Muting yourself stops the frames now, not when the server's event comes back.
  if (message.type === "mute.set" && message.muted) audio?.setSending(false);
  // A click is a gesture: the moment to lift an autoplay block.
  if (audio?.blocked) audio.resume().then(showListenButton);
  send(message);
});

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function post(path, body) {
  const response = await fetch(root.dataset.apiUrl + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data.detail || "That did not work.");
  }
}

root.querySelector('[data-role="invite-form"]').addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    await post("invites/", { username: form.username.value });
    showStatus(root, `Invited ${form.username.value}.`);
    form.reset();
  } catch (error) {
    showStatus(root, error.message);
  }
});

root.querySelector('[data-role="pin-form"]').addEventListener("submit", (event) => {
  event.preventDefault();
  const value = event.currentTarget.voice_tweet_id.value;
  send({ type: "pin.set", voice_tweet_id: value ? Number(value) : null });
});

startAudio().finally(connect);
window.addEventListener("pagehide", () => audio?.close());
