// Voice tweets and voice messages in the page: players that seek on the waveform, the composer
// (record or upload, with upload progress), and live processing state from the notification
// socket. Both are recordings with the same card life cycle; `kind` says which.

import { drawWaveform } from "./waveform.js";

const csrfToken = () =>
  document.querySelector("input[name=csrfmiddlewaretoken]")?.value ??
  document.cookie.match(/(?:^|; )csrftoken=([^;]+)/)?.[1] ?? "";

const mmss = (seconds) => {
  const whole = Math.max(0, Math.round(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
};

// --- Players -----------------------------------------------------------------------------------

function setupPlayer(player) {
  if (player.dataset.ready) return;
  player.dataset.ready = "1";
  const button = player.querySelector(".play");
  const wave = player.querySelector(".waveform");
  const time = player.querySelector(".time");
  const bars = drawWaveform(wave);
  const duration = parseFloat(player.dataset.duration) || 0;
  // The button's visible text says what it does, and its name (who spoke) starts with it.
  const playLabel = button.getAttribute("aria-label") || "Play";
  const showPlaying = (playing) => {
    button.textContent = playing ? "❚❚ Pause" : "▶ Play";
    button.setAttribute("aria-label", playing ? playLabel.replace(/^Play/, "Pause") : playLabel);
  };
  let audio = null;

  const ensureAudio = () => {
    if (audio) return audio;
    audio = new Audio(player.dataset.src);
    audio.preload = "auto";
    audio.addEventListener("timeupdate", render);
    audio.addEventListener("ended", () => { showPlaying(false); render(); });
    audio.addEventListener("pause", () => showPlaying(false));
    audio.addEventListener("play", () => {
      // One voice at a time, as in every audio feed.
      document.querySelectorAll(".player").forEach((other) => other !== player && other.dispatchEvent(new Event("salon:pause")));
      showPlaying(true);
    });
    return audio;
  };
  player.addEventListener("salon:pause", () => audio?.pause());
  const captions = setupCaptions(player);

  function render() {
    const current = audio ? audio.currentTime : 0;
    const played = duration ? current / duration : 0;
    bars.forEach((bar, index) => bar.classList.toggle("played", index / bars.length < played));
    wave.setAttribute("aria-valuenow", String(Math.round(current)));
    wave.setAttribute("aria-valuetext", `${mmss(current)} of ${mmss(duration)}`);
    time.textContent = audio && !audio.paused ? mmss(current) : mmss(current || duration);
    captions?.show(current);
  }

  const seek = (seconds) => {
    const a = ensureAudio();
    a.currentTime = Math.min(Math.max(0, seconds), duration);
    render();
  };

  button.addEventListener("click", () => {
    const a = ensureAudio();
    if (a.paused) a.play().catch(() => {}); else a.pause();
  });
  // A link to a moment (search results: ?t=SECONDS or #t=SECONDS) and the transcript's lines
  // seek here; `play` starts from there.
  player.addEventListener("salon:seek", ({ detail }) => {
    const a = ensureAudio();
    const go = () => {
      seek(detail.seconds);
      if (detail.play) a.play().catch(() => {});
    };
    if (a.readyState >= HTMLMediaElement.HAVE_METADATA) go();
    else a.addEventListener("loadedmetadata", go, { once: true });
  });
  wave.addEventListener("click", (event) => {
    const box = wave.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * duration);
  });
  wave.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 5, ArrowUp: 5, ArrowLeft: -5, ArrowDown: -5 }[event.key];
    if (step !== undefined) { event.preventDefault(); seek((audio?.currentTime ?? 0) + step); }
    if (event.key === "Home") { event.preventDefault(); seek(0); }
    if (event.key === "End") { event.preventDefault(); seek(duration); }
  });
}

// --- Captions --------------------------------------------------------------------------------

// Whether a member wants captions, remembered in this browser per member (on by default).
const captionsKey = (player) => `salon.captions.${player.dataset.member ?? "anonymous"}`;
const captionsWanted = (player) => localStorage.getItem(captionsKey(player)) !== "off";

// Our players are script-driven Audio objects (no <video>/<audio controls> to render a <track>),
// so the caption line is ours: the segment whose span holds the playing time, read from the
// transcript the server rendered under the player. Null for a player without a transcript.
function setupCaptions(player) {
  const box = player.closest(".recording-player");
  const line = box?.querySelector(".caption-line");
  const toggle = player.querySelector(".cc");
  if (!line || !toggle) return null;
  const segments = [...box.querySelectorAll(".transcript .segment")].map((button) => ({
    button,
    start: parseFloat(button.dataset.start),
    end: parseFloat(button.dataset.end),
    text: button.textContent.replace(/^\s*\d+:\d\d\s*/, ""),
  }));
  let on = captionsWanted(player);
  let current = 0;
  let started = false;
  const show = (seconds) => {
    current = seconds;
    started = started || seconds > 0;
    const segment = segments.find((s) => seconds >= s.start && seconds < s.end);
    const text = segment?.text ?? "";
    if (line.textContent !== text) line.textContent = text;
    line.hidden = !on || !started || !text;
    segments.forEach((s) => s.button.classList.toggle("current", started && s === segment));
  };
  const paint = () => {
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    show(current);
  };
  toggle.addEventListener("click", () => {
    on = !on;
    localStorage.setItem(captionsKey(player), on ? "on" : "off");
    // Every player of this member on the page follows the choice.
    document.querySelectorAll(".player").forEach((other) => other.dispatchEvent(new Event("salon:captions")));
  });
  player.addEventListener("salon:captions", () => { on = captionsWanted(player); paint(); });
  segments.forEach((s) => s.button.addEventListener("click", () =>
    player.dispatchEvent(new CustomEvent("salon:seek", { detail: { seconds: s.start, play: true } }))));
  paint();
  return { show };
}

// ?t=SECONDS or #t=SECONDS on a voice tweet's page: its player starts there.
function seekToLinkedMoment() {
  const id = location.pathname.match(/^\/voicetweets\/(\d+)\//)?.[1];
  const t = new URLSearchParams(location.search).get("t") ?? location.hash.match(/^#t=([\d.]+)$/)?.[1];
  const seconds = parseFloat(t);
  const player = id && document.querySelector(`#voicetweet-${id} .player`);
  if (!player || !Number.isFinite(seconds) || seconds < 0) return;
  player.dispatchEvent(new CustomEvent("salon:seek", { detail: { seconds, play: true } }));
}

// --- Cards that change state ---------------------------------------------------------------------

// `next`: where the card's forms (like) send the member back to, this page, not the fragment.
const CARD_URLS = {
  voicetweet: (id) => `/voicetweets/${id}/card?next=${encodeURIComponent(location.pathname + location.search)}`,
  voicemessage: (id) => `/voicemessages/${id}/card`,
};

// Where a new card goes: a reply into its thread when this page shows that thread (the
// voice tweet's page), anything else to the top of the feed, a message to its conversation.
function placeNewCard(kind, fresh) {
  if (kind === "voicemessage") {
    document.querySelector(".conversation-items")?.append(fresh); // oldest first
    return;
  }
  const thread = fresh.dataset.parent && document.querySelector(`.thread-items[data-parent="${fresh.dataset.parent}"]`);
  if (thread) thread.append(fresh); // oldest first, as the page lists them
  else document.querySelector(".feed-items")?.prepend(fresh);
}

async function refreshCard(kind, id) {
  const current = document.getElementById(`${kind}-${id}`);
  const response = await fetch(CARD_URLS[kind](id), { credentials: "same-origin" });
  if (!response.ok) return;
  const holder = document.createElement("div");
  holder.innerHTML = (await response.text()).trim();
  const fresh = holder.firstElementChild;
  if (current) current.replaceWith(fresh);
  else placeNewCard(kind, fresh);
  if (fresh.isConnected) fresh.parentElement.querySelector(":scope > .empty")?.remove();
  fresh.querySelectorAll(".player").forEach(setupPlayer);
  const composerStatus = pending.get(`${kind}-${id}`);
  if (composerStatus && fresh.dataset.state !== "processing") {
    pending.delete(`${kind}-${id}`);
    composerStatus.textContent = fresh.dataset.state === "ready"
      ? (kind === "voicetweet" ? "Posted." : "Sent.")
      : `Not ${kind === "voicetweet" ? "posted" : "sent"}: ${fresh.querySelector(".status")?.textContent.replace(/^Not (posted|sent): /, "") ?? "rejected"}`;
  }
}

// A message event concerns this page if it shows the conversation between those two members.
function showsConversation(message) {
  const withWhom = document.querySelector(".conversation-items")?.dataset.with;
  return withWhom !== undefined && [message.sender, message.recipient].includes(withWhom);
}

// Recordings this page uploaded and is waiting for ("kind-id"), with the status line to update.
const pending = new Map();

// The page's one notification socket is notifications.js's; its messages come as events.
function listenForProcessing() {
  window.addEventListener("salon:notification", ({ detail: message }) => {
    if (message.type !== "notification") return;
    if (message.event === "voicetweet.ready") (message.thread_ids ?? [message.id]).forEach((id) => refreshCard("voicetweet", id));
    if (message.event === "voicetweet.rejected") refreshCard("voicetweet", message.id);
    if (message.event?.startsWith("voicemessage.") && showsConversation(message)) refreshCard("voicemessage", message.id);
  });
}

// --- Composer: record or upload ------------------------------------------------------------------

function pickMimeType() {
  for (const type of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"]) {
    if (window.MediaRecorder?.isTypeSupported?.(type)) return type;
  }
  return "";
}

function setupComposer(form) {
  const status = form.querySelector(".composer-status");
  const progress = form.querySelector(".upload-progress");
  const fileInput = form.querySelector("input[type=file]");
  const threadBox = form.querySelector("input[name=post_as_thread]"); // voice tweets only
  const recorderBox = form.querySelector(".recorder");
  const kind = form.dataset.kind ?? "voicetweet";
  const maxSeconds = () => parseInt(threadBox?.checked ? form.dataset.maxThreadSeconds : form.dataset.maxSeconds, 10);
  let recording = null; // {blob, type}
  let resetRecorder = () => {};

  if (navigator.mediaDevices?.getUserMedia && window.MediaRecorder) {
    recorderBox.hidden = false;
    const button = recorderBox.querySelector(".record");
    const timer = recorderBox.querySelector(".timer");
    const meter = recorderBox.querySelector(".level");
    const preview = recorderBox.querySelector(".preview");
    let session = null;

    const stop = () => session?.recorder.state === "recording" && session.recorder.stop();
    // After a post: the composer is fresh again. The preview lets go of its blob: URL before
    // it is revoked (revoking it under a playing element shows a failed fetch in the console).
    resetRecorder = () => {
      const url = preview.src;
      preview.pause();
      preview.removeAttribute("src");
      preview.load();
      preview.hidden = true;
      if (url.startsWith("blob:")) URL.revokeObjectURL(url);
      button.textContent = "● Record";
      button.setAttribute("aria-label", "Record");
      timer.textContent = "0:00";
    };
    button.addEventListener("click", async () => {
      if (session) { stop(); return; }
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
      } catch (error) {
        status.textContent = `The microphone is not available (${error.name}). You can upload a file instead.`;
        return;
      }
      const type = pickMimeType();
      const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      const chunks = [];
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      context.createMediaStreamSource(stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      const started = performance.now();
      session = { recorder, stream, context };
      const tick = () => {
        if (!session) return;
        const elapsed = (performance.now() - started) / 1000;
        timer.textContent = mmss(elapsed);
        analyser.getFloatTimeDomainData(samples);
        meter.value = Math.min(1, Math.sqrt(samples.reduce((sum, s) => sum + s * s, 0) / samples.length) * 4);
        if (elapsed >= maxSeconds()) stop(); else requestAnimationFrame(tick);
      };
      recorder.addEventListener("dataavailable", (event) => event.data.size && chunks.push(event.data));
      recorder.addEventListener("stop", () => {
        stream.getTracks().forEach((track) => track.stop());
        context.close();
        session = null;
        button.textContent = "● Record again";
        button.setAttribute("aria-label", "Record again");
        meter.value = 0;
        recording = { blob: new Blob(chunks, { type: recorder.mimeType }), type: recorder.mimeType };
        if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src); // the take before
        preview.src = URL.createObjectURL(recording.blob);
        preview.hidden = false;
        status.textContent = `Recorded ${timer.textContent}. Post it, or record again.`;
      });
      recorder.start(1000);
      button.textContent = "■ Stop";
      button.setAttribute("aria-label", "Stop recording");
      status.textContent = "Recording…";
      requestAnimationFrame(tick);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData();
    const text = form.querySelector("input[name=text]");
    const file = fileInput.files[0];
    if (file) data.append("audio", file);
    else if (recording) data.append("audio", recording.blob, recording.type.includes("ogg") ? "recording.ogg" : recording.type.includes("mp4") ? "recording.m4a" : "recording.webm");
    else { status.textContent = "Record something or choose a file first."; return; }
    if (text) data.append("text", text.value);
    if (threadBox) data.append("post_as_thread", threadBox.checked ? "true" : "false");
    const parent = form.querySelector("input[name=parent_id]");
    if (parent) data.append("parent_id", parent.value);

    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadUrl ?? "/api/v1/voicetweets/");
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.responseType = "json";
    progress.hidden = false;
    progress.value = 0;
    status.textContent = "Uploading…";
    request.upload.addEventListener("progress", (e) => { if (e.lengthComputable) progress.value = e.loaded / e.total; });
    request.addEventListener("load", () => {
      progress.hidden = true;
      if (request.status === 202) {
        status.textContent = "Uploaded. Processing…";
        form.reset();
        recording = null;
        resetRecorder();
        pending.set(`${kind}-${request.response.id}`, status);
        refreshCard(kind, request.response.id);
      } else {
        const body = request.response ?? {};
        status.textContent = body.detail?.detail ?? body.detail ?? Object.values(body).flat().join(" ") ?? `Upload failed (${request.status}).`;
      }
    });
    request.addEventListener("error", () => { progress.hidden = true; status.textContent = "The upload failed: check your connection."; });
    request.send(data);
  });
}

document.querySelectorAll(".player").forEach(setupPlayer);
seekToLinkedMoment();
document.querySelectorAll("[data-composer]").forEach(setupComposer);
if (document.querySelector("[data-composer], [data-voicetweet], .conversation-items")) listenForProcessing();
