// The space page: one socket to /ws/spaces/<id>/, a Room kept from its events, the grid rendered
// from the Room. Audio is added by a later step beside this (binary frames on the same socket).
import { Room } from "./spaces/room.js";
import { floatReaction, log, render, showStatus } from "./spaces/view.js";

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
let socket = null;
let retryDelay = 1000;
let closedForGood = false;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  showStatus(root, "Connecting…");
  socket.addEventListener("message", (message) => {
    if (typeof message.data !== "string") return; // binary frames belong to the audio step
    onEvent(JSON.parse(message.data));
  });
  socket.addEventListener("close", (event) => {
    if (event.code >= 4000) {
      closedForGood = event.code !== 4000 || closedForGood;
      showStatus(root, event.reason || CLOSE_REASONS[event.code] || "Disconnected.");
      root.querySelector('[data-role="controls"]').replaceChildren();
      root.querySelector('[data-role="host-controls"]').hidden = true;
      return;
    }
    if (closedForGood) return;
    showStatus(root, "Connection lost, reconnecting…");
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15000);
  });
}

function onEvent(event) {
  if (event.type === "error") {
    showStatus(root, event.message);
    return;
  }
  if (event.type === "reaction") {
    const p = room.participants.get(event.user_id);
    floatReaction(root, event.emoji, p ? p.name : "");
    return;
  }
  if (event.type === "snapshot") {
    retryDelay = 1000;
    showStatus(root, "You are in the space.");
  }
  log(root, room.apply(event));
  if (event.type !== "space.ended") render(root, room);
}

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
  const message = { type: button.dataset.command };
  if (button.dataset.userId) message.user_id = Number(button.dataset.userId);
  if (button.dataset.ban) message.ban = true;
  if (button.dataset.emoji) message.emoji = button.dataset.emoji;
  if (button.dataset.muted) message.muted = button.dataset.muted === "true";
  if (message.type === "leave") closedForGood = true;
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

connect();
