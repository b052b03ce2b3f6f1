// The replay page: the <audio> element plays and seeks (the server answers Range requests);
// the waveform and the speaker timeline seek on click; "Next speaker" jumps to the next turn
// of someone other than whoever is talking now (the rule of next_speaker_start in
// spaces/audio/recorder.py); the timeline marks who is talking as the replay plays.

import { drawWaveform } from "../waveform.js";

const mmss = (seconds) => {
  const whole = Math.max(0, Math.round(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
};

// segments: [{speakerId, start, end}] ordered by start; returns a time or null.
export function nextSpeakerStart(segments, position) {
  const current = new Set(segments.filter((s) => s.start <= position && position < s.end).map((s) => s.speakerId));
  const next = segments.find((s) => s.start > position && !current.has(s.speakerId));
  return next ? next.start : null;
}

function setupPlayer(root) {
  const player = root.querySelector('[data-role="player"]');
  if (!player) return;
  const audio = player.querySelector('[data-role="audio"]');
  const wave = player.querySelector('[data-role="waveform"]');
  const bars = drawWaveform(wave);
  const position = player.querySelector('[data-role="position"]');
  const nowSpeaking = player.querySelector('[data-role="now-speaking"]');
  const nextButton = player.querySelector('[data-role="next-speaker"]');
  const items = [...root.querySelectorAll('[data-role="timeline"] li')];
  const segments = items.map((item) => ({
    item,
    speakerId: item.dataset.speakerId,
    name: item.querySelector("strong").textContent,
    start: parseFloat(item.dataset.start),
    end: parseFloat(item.dataset.end),
  }));
  const duration = () => (Number.isFinite(audio.duration) ? audio.duration : parseFloat(player.dataset.duration) || 0);

  function render() {
    const now = audio.currentTime;
    const played = duration() ? now / duration() : 0;
    bars.forEach((bar, index) => bar.classList.toggle("played", index / bars.length < played));
    wave.setAttribute("aria-valuenow", String(Math.round(now)));
    wave.setAttribute("aria-valuetext", `${mmss(now)} of ${mmss(duration())}`);
    position.textContent = mmss(now);
    const talking = segments.filter((s) => s.start <= now && now < s.end);
    for (const s of segments) s.item.classList.toggle("speaking", talking.includes(s));
    nowSpeaking.textContent = talking.length ? `· ${talking.map((s) => s.name).join(", ")} speaking` : "";
    nextButton.disabled = nextSpeakerStart(segments, now) === null;
  }

  const seek = (seconds) => {
    audio.currentTime = Math.min(Math.max(0, seconds), duration());
    render();
  };
  const seekAndPlay = (seconds) => {
    seek(seconds);
    audio.play().catch(() => {}); // autoplay may be refused until the member interacts
  };

  audio.addEventListener("timeupdate", render);
  audio.addEventListener("seeked", render);
  audio.addEventListener("loadedmetadata", render);
  wave.addEventListener("click", (event) => {
    const box = wave.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * duration());
  });
  wave.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 10, ArrowUp: 10, ArrowLeft: -10, ArrowDown: -10 }[event.key];
    if (step !== undefined) { event.preventDefault(); seek(audio.currentTime + step); }
    if (event.key === "Home") { event.preventDefault(); seek(0); }
    if (event.key === "End") { event.preventDefault(); seek(duration()); }
  });
  for (const s of segments) s.item.querySelector("button").addEventListener("click", () => seekAndPlay(s.start));
  nextButton.addEventListener("click", () => {
    const next = nextSpeakerStart(segments, audio.currentTime);
    if (next !== null) seekAndPlay(next);
  });
  render();
}

function setupDelete(root) {
  const form = root.querySelector("form[data-confirm]");
  form?.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

const root = document.getElementById("replay");
if (root) {
  setupPlayer(root);
  setupDelete(root);
}
