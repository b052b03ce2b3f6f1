// Renders a Room into the space page. Buttons carry data-command (+ data-user-id) and are
// handled by one delegated listener in space.js, so re-rendering never loses handlers.

const ROLE_LABEL = { host: "Host", cohost: "Co-host", speaker: "Speaker", listener: "Listener" };

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function commandButton(label, command, { userId, accessible, className = "secondary" } = {}) {
  const button = el("button", { type: "button", "data-command": command, class: className }, label);
  if (userId !== undefined) button.dataset.userId = userId;
  if (accessible) button.setAttribute("aria-label", accessible);
  return button;
}

const RANK = { host: 3, cohost: 2, speaker: 1, listener: 0 };

function moderationButtons(room, p) {
  const me = room.me;
  const buttons = [];
  if (!room.isModerator || p.user_id === room.userId || RANK[me.role] <= RANK[p.role]) {
    return buttons;
  }
  const who = p.name;
  if (p.role === "listener" && p.hand_raised) {
    buttons.push(commandButton("Approve", "hand.approve", { userId: p.user_id, accessible: `Let ${who} speak` }));
    buttons.push(commandButton("Dismiss", "hand.dismiss", { userId: p.user_id, accessible: `Dismiss ${who}'s hand` }));
  } else if (p.role === "listener" && !p.invited_to_speak) {
    buttons.push(commandButton("Invite to speak", "speak.invite", { userId: p.user_id, accessible: `Invite ${who} to speak` }));
  }
  if (p.role !== "listener" && !p.is_muted) {
    buttons.push(commandButton("Mute", "speaker.mute", { userId: p.user_id, accessible: `Mute ${who}` }));
  }
  if (p.role === "speaker") {
    buttons.push(commandButton("To listeners", "speaker.move_to_listeners", { userId: p.user_id, accessible: `Move ${who} to the listeners` }));
  }
  if (me.role === "host" && (p.role === "speaker" || p.role === "listener")) {
    buttons.push(commandButton("Make co-host", "cohost.add", { userId: p.user_id, accessible: `Make ${who} co-host` }));
  }
  if (me.role === "host" && p.role === "cohost") {
    buttons.push(commandButton("Remove co-host", "cohost.remove", { userId: p.user_id, accessible: `Remove ${who} as co-host` }));
  }
  buttons.push(commandButton("Remove", "participant.remove", { userId: p.user_id, accessible: `Remove ${who} from the space` }));
  const ban = commandButton("Ban", "participant.remove", { userId: p.user_id, accessible: `Remove and ban ${who}`, className: "danger" });
  ban.dataset.ban = "true";
  buttons.push(ban);
  return buttons;
}

function participantTile(room, p) {
  const item = el("li", { class: `participant role-${p.role}`, "data-user-id": p.user_id });
  if (p.role !== "listener" && p.is_muted) item.classList.add("is-muted");
  if (p.hand_raised) item.classList.add("hand-raised");
  // The member's avatar when they have one, else their initial.
  const initials = el("span", { class: "avatar", "aria-hidden": "true" }, p.avatar_url ? "" : p.name.slice(0, 1).toUpperCase());
  if (p.avatar_url) initials.append(el("img", { src: p.avatar_url, alt: "", width: "48", height: "48", loading: "lazy" }));
  if (p.hand_raised) initials.append(el("span", { class: "avatar-badge" }, "✋"));
  else if (p.role !== "listener" && p.is_muted) initials.append(el("span", { class: "avatar-badge" }, "🔇"));
  const name = el("strong", { class: "participant-name" }, p.name + (p.user_id === room.userId ? " (you)" : ""));
  const state = [];
  if (p.role !== "listener") state.push(ROLE_LABEL[p.role]);
  if (p.role !== "listener") state.push(p.is_muted ? "muted" : "unmuted");
  if (p.hand_raised) state.push("✋ hand raised");
  if (p.invited_to_speak) state.push("invited to speak");
  item.append(initials, name, el("span", { class: "participant-state muted" }, state.join(" · ")));
  const buttons = moderationButtons(room, p);
  if (buttons.length) {
    const tools = el("div", { class: "participant-tools", role: "group", "aria-label": `Moderate ${p.name}` });
    tools.append(...buttons);
    item.append(tools);
  }
  return item;
}

function ownControls(room) {
  const me = room.me;
  const controls = [];
  if (!me) return controls;
  if (me.role === "listener") {
    controls.push(me.hand_raised
      ? commandButton("Lower hand", "hand.lower")
      : commandButton("✋ Raise hand", "hand.raise", { className: "" }));
    if (me.invited_to_speak) {
      controls.push(commandButton("Accept invitation to speak", "speak.accept", { className: "" }));
      controls.push(commandButton("Decline", "speak.decline"));
    }
  } else {
    const unmute = commandButton(me.is_muted ? "🎙 Unmute" : "Mute", "mute.set", {
      className: me.is_muted ? "" : "secondary",
      accessible: me.is_muted ? "Unmute your microphone" : "Mute your microphone",
    });
    unmute.dataset.muted = String(!me.is_muted);
    unmute.setAttribute("aria-pressed", String(me.is_muted));
    controls.push(unmute);
  }
  // Emoji buttons: the group's visible label says what they do.
  const reactions = el("div", { class: "reactions", role: "group", "aria-labelledby": "reactions-label" });
  reactions.append(el("span", { class: "group-label muted", id: "reactions-label" }, "Reactions"));
  for (const emoji of room.reactions) {
    const button = commandButton(emoji, "reaction.send", { accessible: `React ${emoji}` });
    button.dataset.emoji = emoji;
    reactions.append(button);
  }
  controls.push(reactions, commandButton("Leave quietly", "leave"));
  return controls;
}

export function render(root, room) {
  const stage = root.querySelector('[data-role="stage"]');
  const listeners = root.querySelector('[data-role="listeners"]');
  const people = [...room.participants.values()].sort((a, b) => RANK[b.role] - RANK[a.role]);
  stage.replaceChildren(...people.filter((p) => p.role !== "listener").map((p) => participantTile(room, p)));
  listeners.replaceChildren(...people.filter((p) => p.role === "listener").map((p) => participantTile(room, p)));
  const count = room.space.listener_count;
  root.querySelector('[data-role="listener-count"]').textContent = `${count.toLocaleString()} listening`;
  const hostStatus = root.querySelector('[data-role="host-status"]');
  hostStatus.hidden = !room.space.host_away;
  root.querySelector('[data-role="host-status-text"]').textContent = room.space.host_away ? "The host is reconnecting…" : "";
  // Only a co-host may take over (services.space_host_take_over), at once.
  root.querySelector('[data-role="take-over"]').hidden = !(room.space.host_away && room.me?.role === "cohost");
  const more = root.querySelector('[data-role="more-listeners"]');
  const unlisted = room.unlistedListeners;
  more.hidden = unlisted === 0;
  more.textContent = unlisted ? `and ${unlisted.toLocaleString()} more listening` : "";
  root.querySelector('[data-role="controls"]').replaceChildren(...ownControls(room));
  root.querySelector('[data-role="host-controls"]').hidden = !room.isModerator;
  root.querySelector('[data-role="recording"]').hidden = !room.space.is_recording;
  const mode = room.space.audio_mode;
  const music = mode === "music" || mode === "music_stereo";
  const badge = root.querySelector('[data-role="audio-mode"]');
  badge.hidden = !music;
  badge.textContent = mode === "music_stereo" ? "♪ Music mode · stereo" : "♪ Music mode";
  // Only the host chooses the mode (services.space_set_audio_mode); stereo is music's option.
  const host = room.me?.role === "host";
  const modeToggle = root.querySelector('[data-action="audio-mode"]');
  modeToggle.hidden = !host;
  modeToggle.textContent = music ? "Switch to speech mode" : "♪ Switch to music mode";
  modeToggle.setAttribute("aria-pressed", String(music));
  const stereoToggle = root.querySelector('[data-action="audio-stereo"]');
  stereoToggle.hidden = !host || !music;
  stereoToggle.textContent = mode === "music_stereo" ? "Switch to mono" : "Switch to stereo";
  stereoToggle.setAttribute("aria-pressed", String(mode === "music_stereo"));
  const pinned = root.querySelector('[data-role="pinned"]');
  pinned.hidden = !room.space.pinned_voice_tweet_id;
  const pin = room.space.pinned_voice_tweet_id;
  // A link to the pinned voice tweet (its page plays it), rebuilt only when the pin changes.
  if (pinned.dataset.pin !== String(pin ?? "")) {
    pinned.dataset.pin = String(pin ?? "");
    pinned.replaceChildren(...(pin ? [el("a", { href: `/voicetweets/${pin}/`, target: "_blank", rel: "noopener" }, "📌 Pinned voice tweet")] : []));
  }
  showLevels(root, room);
}

// Speaking rings: a tile whose speaker the mixer counts as talking gets `.speaking`, and its
// level (0..1) as --level for the ring's width. Cheap enough for 5 events a second.
export function showLevels(root, room) {
  for (const tile of root.querySelectorAll(".participant[data-user-id]")) {
    const level = room.levels[tile.dataset.userId];
    const talking = !!level && level.talking;
    tile.classList.toggle("speaking", talking);
    tile.style.setProperty("--level", talking ? String(level.level) : "0");
  }
}

export function showAudioStatus(root, text) {
  const node = root.querySelector('[data-role="audio-status"]');
  node.textContent = text;
  node.hidden = !text;
}

export function showStatus(root, text) {
  root.querySelector('[data-role="status"]').textContent = text;
}

export function log(root, line) {
  if (!line) return;
  const list = root.querySelector('[data-role="log"]');
  list.prepend(el("li", {}, line));
  while (list.children.length > 8) list.lastElementChild.remove();
}

// The emoji rises from the sender's avatar (or the page corner if their tile is not shown).
export function floatReaction(root, emoji, name, userId) {
  const avatar = root.querySelector(`.participant[data-user-id="${userId}"] .avatar`);
  const holder = avatar || root.querySelector('[data-role="reaction-float"]');
  const bubble = el("span", { class: avatar ? "reaction-bubble on-avatar" : "reaction-bubble", title: name }, emoji);
  holder.append(bubble);
  setTimeout(() => bubble.remove(), 2500);
}

// The space ended (for everyone, or the host ended it here): the page becomes the ended space,
// with the way to its replay when one is made; nothing of the live room stays clickable.
export function showEnded(root, room) {
  for (const role of ["live-badge", "recording", "audio-mode", "pinned", "listener-count", "host-status", "listen", "host-controls"]) {
    const node = root.querySelector(`[data-role="${role}"]`);
    if (node) node.hidden = true;
  }
  root.querySelector('[data-role="stage"]').replaceChildren();
  root.querySelector('[data-role="listeners"]').replaceChildren();
  root.querySelector('[data-role="stage-section"]').hidden = true;
  root.querySelector('[data-role="listeners-section"]').hidden = true;
  root.querySelector('[data-role="more-listeners"]').hidden = true;
  root.querySelector('[data-role="controls"]').replaceChildren();
  const ended = root.querySelector('[data-role="ended"]');
  const replay = root.querySelector('[data-role="replay-link"]');
  const url = room.space?.replay_url;
  replay.hidden = !url;
  if (url) {
    replay.href = url;
    replay.textContent = "▶ The replay";
  }
  root.querySelector('[data-role="ended-text"]').textContent = url
    ? "This space has ended. Its replay is being prepared."
    : "This space has ended.";
  ended.hidden = false;
  showStatus(root, "");
  root.querySelector('[data-role="status"]').hidden = true;
}
