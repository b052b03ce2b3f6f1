// Every signed-in page: one socket to /ws/notifications/ (docs/protocol.md, "The notification
// socket"). It keeps the bell's unread count, keeps an open hallway live (spaces going live,
// their counts, spaces ending), and hands every message to the page's other scripts as a
// `salon:notification` event on window (voicetweets.js follows processing through it).

const bell = document.querySelector('[data-role="bell"]');
const bellCount = document.querySelector('[data-role="bell-count"]');

function showUnread(count) {
  if (!bell) return;
  bellCount.textContent = String(count);
  bellCount.hidden = count === 0;
  bell.setAttribute("aria-label", count ? `Notifications, ${count} unread` : "Notifications");
  bell.dataset.unread = String(count);
}

// A stored notification (it has an id and a text) is one more unread; status updates
// (voicetweet.ready, …) carry an `event` and are not the bell's.
function onNotification(message) {
  if (message.event === "notifications.read") showUnread(message.unread_count);
  else if (message.event === undefined && message.id !== undefined && message.text) {
    showUnread(Number(bellCount?.textContent || 0) + 1);
  }
}

// --- The hallway ---------------------------------------------------------------------------------

let hallwayFetching = false;
let hallwayAgain = false;

// The server names only the space: the page fetches its own hallway, which applies what this
// member may see. One fetch at a time; changes meanwhile make one more.
async function refreshHallway() {
  const section = document.querySelector('[data-role="hallway"]');
  if (!section) return;
  if (hallwayFetching) {
    hallwayAgain = true;
    return;
  }
  hallwayFetching = true;
  try {
    const response = await fetch(section.dataset.hallwayUrl, { credentials: "same-origin" });
    if (response.ok) {
      const holder = document.createElement("div");
      holder.innerHTML = (await response.text()).trim();
      const fresh = holder.querySelector('[data-role="hallway"]');
      if (fresh) document.querySelector('[data-role="hallway"]')?.replaceWith(fresh);
    }
  } catch {
    // Offline for a moment: the next change fetches it again.
  } finally {
    hallwayFetching = false;
    if (hallwayAgain) {
      hallwayAgain = false;
      refreshHallway();
    }
  }
}

function showCount(message) {
  for (const count of document.querySelectorAll(`[data-space-count="${message.space_id}"]`)) {
    count.textContent = String(message.participant_count);
  }
}

// --- The socket ----------------------------------------------------------------------------------

let connectedBefore = false;
let retryDelay = 1000;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/notifications/`);
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      document.documentElement.dataset.notifications = "connected";
      retryDelay = 1000;
      // Whatever changed while we were away (a reconnect): the hallway as it is now.
      if (connectedBefore) refreshHallway();
      connectedBefore = true;
    }
    if (message.type === "notification") onNotification(message);
    // Spread over a second: every open hallway hears of a change at the same moment.
    if (message.type === "hallway.changed") setTimeout(refreshHallway, Math.random() * 1000);
    if (message.type === "hallway.count") showCount(message);
    window.dispatchEvent(new CustomEvent("salon:notification", { detail: message }));
  });
  socket.addEventListener("close", (event) => {
    document.documentElement.dataset.notifications = "closed";
    if (event.code >= 4400 && event.code < 4500) return; // signed out or refused: do not hammer
    setTimeout(connect, retryDelay * (0.5 + Math.random() / 2));
    retryDelay = Math.min(retryDelay * 2, 30000);
  });
}

connect();
