// AudioWorklet processors of the space page (loaded by audio.js with audioWorklet.addModule).
// They run on the audio rendering thread, so their clock is the sound card's: playback timing
// follows it, never the arrival times of packets. Nothing in process() allocates (no GC pauses
// on the rendering thread); the only message posted from it is a concealment request, on a loss.

const FRAME = 960; // 20 ms at 48 kHz: one Opus frame (docs/audio.md)
const MS = 48; // samples per millisecond at the context's 48 kHz

// --- Playout (docs/audio.md, "Browser playout") ------------------------------------------------
//
// Like WebRTC NetEq: decoded frames wait in slots keyed by their media frame number (the mix
// frame's sequence = server tick, unwrapped by audio.js); a playout clock maps media time onto
// the sound card's clock and never stops, so silence and DTX (a quiet room sends nothing) play
// as silence in their place and the next talk spurt lands where its timestamp says, with the
// delay it had before: nothing re-primes. The delay is steered towards a target taken from
// measured jitter, by time-scale modification of what is played (WSOLA, one pitch period at a
// time), never by dropping or repeating whole frames.
const SLOTS = 64; // frames kept ahead of the playout point: 1.28 s
const SYNC = 32768; // decoded samples ready to play (a ring): silence ahead, TSM lookahead
// A frame is decided this many samples before its first sample plays: time for a concealment
// request to go to the main thread, through the decoder and back. Messages reach the worklet
// only between the device's callbacks: at audio.js's latencyHint 0 a callback is one 128-frame
// quantum (2.7 ms), so the guard spans two; where the platform's buffer is larger (4 quanta,
// 10.7 ms, at "interactive" on Linux) the answer may come a callback later, and the bridge
// below fills in (a longer guard would cost every listener that much delay to save a rare
// bridge).
const GUARD = 256;
// Frames missing after a sound stream are concealed (Opus PLC) for this many in a row; then the
// gap is silence (the server sends quiet frames for 200 ms before it stops, so a real end of
// speech has faded long before).
const MAX_CONCEAL = 3;
// A frame asked for but not there yet stalls playout (silence, the delay grows) this long at
// most; then it is given up and plays as silence.
// While it waits, the last pitch period played is played again (NetEq's expand, done here: the
// answer may take more than a device callback when the page is busy), a little quieter each
// time (a busy page or server can hold frames back for 100 ms); after MAX_STALL of that the frame is given up and plays as silence.
const MAX_STALL = 120 * MS; // fading by then to about −60 dB
const BRIDGE_GAIN = 0.85;
// The server ends a talk spurt with 200 ms of quiet frames before it stops sending (room DTX):
// a stream that stops after a frame louder than this (−50 dBFS) stalled, it did not go quiet,
// so the clock waits for it (bridging) instead of running on through silence.
const LOUD = 0.003;
// Jitter: the relative delay of each frame (its arrival against its media time, compared with
// the fastest frame of the last 2-4 s) goes into a histogram of 1 ms bins that forgets by
// media time (scaled by FORGET per 20 ms frame since the last arrival: about 3 s of memory,
// silences included, so a talk spurt's start-up jitter does not weigh on the next ones). The target is its 95th
// percentile plus MARGIN (the decision guard, one render quantum and the decoder's time).
const BINS = 501;
const FORGET = 0.993;
const PERCENTILE = 0.95;
const MARGIN = GUARD + 128 + 2 * MS;
const MIN_TARGET = MARGIN;
const MAX_TARGET = 400 * MS;
const MIN_WINDOW = 2 * sampleRate; // the fastest-frame reference is renewed every 2 s
// Time-scale modification: pitch periods of 2.5–13.3 ms (75–400 Hz), found by normalized
// cross-correlation over a 10 ms window, coarse at 12 kHz then refined at 48 kHz. A segment is
// accelerated or expanded only when periodic enough (correlation ≥ 0.9) or silent.
const T_MIN = 120;
const T_MAX = 640;
const WINDOW = 480;
const DECIMATE = 4;
const PERIODIC = 0.9;
const SILENT = 1e-4; // peak below −80 dBFS: no signal to preserve
// Hysteresis around the target (accelerate above target + HIGH, expand below target − LOW).
// Silence costs nothing to shorten: there the delay is brought within a quantum of the target.
const HIGH = 10 * MS;
const HIGH_SILENT = 128;
const LOW = 3 * MS;
const DELAY_BINS = 1001; // delay histogram of what was played, 1 ms bins, for stats
const ONSETS = 512; // onset times kept for the latency bench (a ring)
const ONSET_LEVEL = 0.05; // −26 dBFS
const ONSET_QUIET = 100 * MS; // an onset must follow this much quiet

// Detects tone-burst onsets in a signal, for the mouth-to-ear bench: the frame (sample clock of
// the context) of the first sample above ONSET_LEVEL after ONSET_QUIET quiet samples.
class OnsetDetector {
  constructor() {
    this.times = new Float64Array(ONSETS);
    this.count = 0;
    this.quiet = ONSET_QUIET;
  }

  scan(samples, startFrame) {
    for (let i = 0; i < samples.length; i++) {
      const level = samples[i] < 0 ? -samples[i] : samples[i];
      if (level < ONSET_LEVEL) {
        this.quiet += 1;
      } else {
        if (this.quiet >= ONSET_QUIET) {
          this.times[this.count % ONSETS] = startFrame + i;
          this.count += 1;
        }
        this.quiet = 0;
      }
    }
  }

  list() {
    const n = Math.min(this.count, ONSETS);
    const out = [];
    for (let i = this.count - n; i < this.count; i++) out.push(this.times[i % ONSETS]);
    return out;
  }
}

// Messages in (from audio.js): {type: "arrive", frame} as each mix frame comes off the socket
// (its arrival time is the jitter measurement); {type: "frame", frame, samples, kind} once
// decoded (kind: "audio", "concealed" by Opus PLC, or "silent" when audio.js has nothing for
// it); "stats", "onsets", "recording", {type: "record", seconds}, "flush" (a new stream).
// Message out from process(): the bare number of a frame it is about to need and lacks, so
// audio.js conceals it (or tells it the frame is silence).
class PlayoutProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.slots = new Float32Array(SLOTS * FRAME);
    // Stereo (music_stereo rooms, {type: "channels", channels: 2}): the right channel's
    // slots and sync buffer, edited at every write to the left ones, at the same index, so
    // time-scale changes cut both sides alike. Mono rooms never touch them.
    this.stereo = false;
    this.slots2 = new Float32Array(SLOTS * FRAME);
    this.sync2 = new Float32Array(SYNC);
    this.sig = this.at; // what findPeriod() analyses: the left channel, or in stereo the mid
    this.slotFrame = new Float64Array(SLOTS);
    this.slotKind = new Uint8Array(SLOTS); // 1 audio, 2 concealed, 3 silent
    this.sync = new Float32Array(SYNC);
    this.hist = new Float64Array(BINS);
    this.delays = new Uint32Array(DELAY_BINS);
    this.decimated = new Float32Array(Math.ceil((T_MAX + WINDOW) / DECIMATE) + 1);
    this.onsets = new OnsetDetector();
    this.recording = null;
    this.recorded = 0;
    this.counters = {
      underruns: 0, stalledSamples: 0, silentStallSamples: 0, accelerated: 0, expanded: 0,
      acceleratedSamples: 0,
      expandedSamples: 0, late: 0, overflow: 0, givenUp: 0, silentFrames: 0,
      audioFrames: 0,
    };
    this.reset();
    this.port.onmessage = (event) => this.message(event.data);
  }

  reset() {
    this.idle = true; // until the first frame of a stream arrives
    this.slotFrame.fill(-1);
    this.read = 0;
    this.size = 0;
    this.position = 0; // media sample (unwrapped frame × 960) at the read point
    this.nextFrame = 0; // the frame that follows the sync buffer's last sample
    this.arrivedMax = -1;
    this.lastArrival = -Infinity;
    this.minCurrent = Infinity; // fastest frame (arrival − media time) of this window
    this.minPrevious = Infinity; // and of the one before
    this.windowStart = 0;
    this.rebased = 0; // reference rises not yet applied to the histogram (under 1 ms)
    this.hist.fill(0);
    // A prior of 20 ms until jitter is measured: the first frames of a stream have told us
    // nothing yet. It fades with the histogram's forgetting within a few seconds.
    this.hist[20] = 8;
    this.target = this.targetFromHistogram();
    this.inSound = false; // the last frame was sound or a short concealment: a loss is concealed
    this.audible = false; // the last frame was sound or concealment: a stall is bridged
    this.loudTail = false; // the last frame of sound was loud: a stop is a stall, not DTX
    this.concealRun = 0;
    this.requested = -1;
    this.stall = 0; // samples bridged while waiting for the frame asked for
    this.sinceChange = 0; // samples played since the last time-scale change
    this.lastLag = 0;
  }

  message(data) {
    if (data === "stats") this.port.postMessage(this.stats());
    else if (data === "onsets") this.port.postMessage({ type: "onsets", frames: this.onsets.list() });
    else if (data === "recording") this.port.postMessage(this.recordingCopy());
    else if (data === "flush") this.reset();
    else if (data.type === "arrive") this.arrive(data.frame);
    else if (data.type === "frame") this.store(data.frame, data.samples, data.kind, data.right);
    else if (data.type === "channels") this.setChannels(data.channels);
    else if (data.type === "record") {
      this.recording = new Float32Array(Math.round(data.seconds * sampleRate));
      this.recorded = 0;
    }
  }

  get minOffset() {
    return Math.min(this.minCurrent, this.minPrevious);
  }

  // A frame came off the socket now: measure its relative delay and update the target.
  arrive(frame) {
    const now = currentFrame;
    if (this.idle) this.start(frame, now);
    const offset = now - frame * FRAME;
    const base = this.minOffset;
    if (now - this.windowStart >= MIN_WINDOW) {
      this.minPrevious = this.minCurrent;
      this.minCurrent = offset;
      this.windowStart = now;
    } else if (offset < this.minCurrent) {
      this.minCurrent = offset;
    }
    this.rebase(this.minOffset - base);
    const relative = offset - this.minOffset;
    const hist = this.hist;
    const since = this.lastArrival === -Infinity ? 1 : frame - this.lastArrival;
    const elapsed = Math.min(250, Math.max(1, since));
    this.lastArrival = Math.max(this.lastArrival, frame);
    const forget = FORGET ** elapsed;
    for (let i = 0; i < BINS; i++) hist[i] *= forget;
    hist[Math.min(BINS - 1, Math.floor(relative / MS))] += 1;
    this.target = this.targetFromHistogram();
    if (frame > this.arrivedMax) this.arrivedMax = frame;
  }

  // The fastest-frame reference rose by `delta` samples (a window renewed without the old
  // fastest frame): the delays in the histogram were measured from the old one, so they move
  // down by as much, as if measured from the new one. Without this, a step in the stream's
  // timing (the server skipped ticks after a stall, so every later frame comes S ms later for
  // its number) is counted twice: as S ms of jitter while the old reference lasts (the delay
  // then needed, measured from it), and again, after the reference has moved up by S, as S ms
  // of delay over the new one, held until the histogram forgets it (several seconds of S ms
  // too much, measured at 200+ ms in the bench). A falling reference (a faster frame) moves
  // nothing: the delays before it describe a slower path that has passed (a page's first
  // frames come late while it loads), and counting them again as jitter over the faster one
  // held that start-up lateness as delay for seconds.
  rebase(delta) {
    if (delta <= 0) return;
    this.rebased += delta;
    const bins = Math.trunc(this.rebased / MS);
    if (bins === 0) return;
    this.rebased -= bins * MS;
    const hist = this.hist;
    let below = 0; // delays under the new reference: a frame as fast as the fastest
    for (let i = 0; i < Math.min(bins + 1, BINS); i++) below += hist[i];
    for (let i = 1; i < BINS; i++) hist[i] = i + bins < BINS ? hist[i + bins] : 0;
    hist[0] = below;
    this.target = this.targetFromHistogram();
  }

  targetFromHistogram() {
    const hist = this.hist;
    let total = 0;
    for (let i = 0; i < BINS; i++) total += hist[i];
    let sum = 0;
    let bin = 0;
    for (; bin < BINS - 1; bin++) {
      sum += hist[bin];
      if (sum >= PERCENTILE * total) break;
    }
    return Math.min(MAX_TARGET, Math.max(MIN_TARGET, (bin + 1) * MS + MARGIN));
  }

  // The first frame of a stream: the clock starts so that it plays `target` from now.
  start(frame, now) {
    this.idle = false;
    this.nextFrame = frame;
    this.position = frame * FRAME - this.target;
    this.read = 0;
    this.size = this.target;
    this.sync.fill(0, 0, this.size);
    if (this.stereo) this.sync2.fill(0, 0, this.size);
    this.minCurrent = now - frame * FRAME;
    this.minPrevious = this.minCurrent;
    this.windowStart = now;
  }

  // Two channels from now on, or one. Going stereo, what is buffered plays on both sides.
  setChannels(channels) {
    const stereo = channels === 2;
    if (stereo === this.stereo) return;
    if (stereo) {
      this.slots2.set(this.slots);
      this.sync2.set(this.sync);
    }
    this.stereo = stereo;
    this.sig = stereo ? this.mid : this.at;
  }

  // `right`: a stereo frame's right channel (`samples` is the left), else the frame is mono.
  store(frame, samples, kind, right) {
    if (this.idle || frame < this.nextFrame) {
      this.counters.late += 1; // its slot has played (as concealment or silence)
      return;
    }
    if (frame - this.nextFrame >= SLOTS) {
      this.counters.overflow += 1;
      return;
    }
    const slot = frame % SLOTS;
    // "silent" answers a request whose decoded frame may still be on its way: never over it.
    if (kind === "silent" && this.slotFrame[slot] === frame) return;
    this.slotFrame[slot] = frame;
    this.slotKind[slot] = kind === "audio" ? 1 : kind === "concealed" ? 2 : 3;
    const base = slot * FRAME;
    if (this.slotKind[slot] === 3 || !samples) {
      this.slots.fill(0, base, base + FRAME);
      if (this.stereo) this.slots2.fill(0, base, base + FRAME);
    } else {
      const n = Math.min(FRAME, samples.length);
      for (let i = 0; i < n; i++) this.slots[base + i] = samples[i];
      for (let i = n; i < FRAME; i++) this.slots[base + i] = 0;
      if (this.stereo) {
        const other = right || samples;
        const m = Math.min(FRAME, other.length);
        for (let i = 0; i < m; i++) this.slots2[base + i] = other[i];
        for (let i = m; i < FRAME; i++) this.slots2[base + i] = 0;
      }
    }
  }

  // Appends frame `nextFrame` (from its slot, or silence) to the sync buffer.
  append(fromSlot) {
    const sync = this.sync;
    let write = (this.read + this.size) & (SYNC - 1);
    if (fromSlot) {
      const slot = this.nextFrame % SLOTS;
      const base = slot * FRAME;
      for (let i = 0; i < FRAME; i++) {
        sync[write] = this.slots[base + i];
        if (this.stereo) this.sync2[write] = this.slots2[base + i];
        write = (write + 1) & (SYNC - 1);
      }
      const kind = this.slotKind[slot];
      this.slotFrame[slot] = -1;
      this.audible = kind !== 3;
      if (kind === 1) {
        let peak = 0;
        for (let i = 0; i < FRAME; i++) {
          const v = Math.abs(this.slots[base + i]);
          if (v > peak) peak = v;
          if (this.stereo && Math.abs(this.slots2[base + i]) > peak) peak = Math.abs(this.slots2[base + i]);
        }
        this.loudTail = peak >= LOUD;
        this.inSound = true;
        this.concealRun = 0;
        this.counters.audioFrames += 1;
      } else if (kind === 2) {
        this.concealRun += 1;
        this.inSound = this.concealRun < MAX_CONCEAL;
      } else {
        this.inSound = false;
        this.counters.silentFrames += 1;
      }
    } else {
      for (let i = 0; i < FRAME; i++) {
        sync[write] = 0;
        if (this.stereo) this.sync2[write] = 0;
        write = (write + 1) & (SYNC - 1);
      }
      this.inSound = false;
      this.audible = false;
      this.loudTail = false;
      this.counters.silentFrames += 1;
    }
    this.size += FRAME;
    this.nextFrame += 1;
    this.stall = 0;
  }

  // Fills the sync buffer to `need` samples. A missing frame right after loud sound, or one
  // known to be lost inside sound (a later one arrived), is asked of audio.js (concealment) and
  // waited for; after loud sound nothing else is played in its place but the bridge (the
  // stream stalled). Any other missing frame is silence (DTX: the room ends a spurt with quiet
  // frames, then sends nothing) and the clock runs on through it without a round trip.
  fill(need) {
    while (this.size < need && this.size + FRAME <= SYNC) {
      const frame = this.nextFrame;
      if (this.slotFrame[frame % SLOTS] === frame) {
        this.append(true);
      } else if ((this.inSound && this.loudTail) || (this.audible && frame <= this.arrivedMax)) {
        if (this.requested !== frame) {
          this.requested = frame;
          this.port.postMessage(frame);
        }
        return;
      } else if (this.loudTail && this.audible) {
        return; // stalled mid-sound: bridge(), then give up after MAX_STALL
      } else {
        this.append(false);
      }
    }
  }

  // Appends only frames that are already here (lookahead for time-scale modification).
  fillPresent(need) {
    while (this.size < need && this.size + FRAME <= SYNC) {
      const frame = this.nextFrame;
      if (this.slotFrame[frame % SLOTS] !== frame) return;
      this.append(true);
    }
  }

  at(i) {
    return this.sync[(this.read + i) & (SYNC - 1)];
  }

  at2(i) {
    return this.sync2[(this.read + i) & (SYNC - 1)];
  }

  // Stereo: the mid signal, for the period search; and the louder side, for silence.
  mid(i) {
    const j = (this.read + i) & (SYNC - 1);
    return 0.5 * (this.sync[j] + this.sync2[j]);
  }

  magnitude(i) {
    const left = Math.abs(this.at(i));
    return this.stereo ? Math.max(left, Math.abs(this.at2(i))) : left;
  }

  // How many of the next `limit` samples are silent before the first that is not.
  silentPrefix(limit) {
    let n = 0;
    while (n < limit && this.magnitude(n) < SILENT) n++;
    return n;
  }

  peak(length) {
    let peak = 0;
    for (let i = 0; i < length; i++) {
      const v = this.magnitude(i);
      if (v > peak) peak = v;
    }
    return peak;
  }

  // The pitch period (best normalized cross-correlation of the WINDOW samples from `origin`,
  // relative to the read point, with the ones T later), coarse on a 12 kHz copy then refined;
  // sets this.lag and this.correlation.
  findPeriod(origin = 0) {
    const d = this.decimated;
    const n = d.length - 1;
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < DECIMATE; k++) sum += this.sig(origin + j * DECIMATE + k);
      d[j] = sum;
    }
    const w = WINDOW / DECIMATE;
    let e0 = 0;
    for (let i = 0; i < w; i++) e0 += d[i] * d[i];
    let best = -2;
    let bestLag = T_MIN / DECIMATE;
    for (let lag = T_MIN / DECIMATE; lag <= T_MAX / DECIMATE && lag + w <= n; lag++) {
      let cross = 0;
      let e1 = 0;
      for (let i = 0; i < w; i++) {
        cross += d[i] * d[i + lag];
        e1 += d[i + lag] * d[i + lag];
      }
      const c = cross / Math.sqrt(e0 * e1 + 1e-20);
      if (c > best) {
        best = c;
        bestLag = lag;
      }
    }
    best = -2;
    let lag = bestLag * DECIMATE;
    const lo = Math.max(T_MIN, lag - DECIMATE + 1);
    const hi = Math.min(T_MAX, lag + DECIMATE - 1);
    let full0 = 0;
    for (let i = 0; i < WINDOW; i++) full0 += this.sig(origin + i) * this.sig(origin + i);
    for (let t = lo; t <= hi; t++) {
      let cross = 0;
      let e1 = 0;
      for (let i = 0; i < WINDOW; i++) {
        const b = this.sig(origin + i + t);
        cross += this.sig(origin + i) * b;
        e1 += b * b;
      }
      const c = cross / Math.sqrt(full0 * e1 + 1e-20);
      if (c > best) {
        best = c;
        lag = t;
      }
    }
    this.lag = lag;
    this.correlation = best;
  }

  // Steers the delay towards the target: accelerate (remove a pitch period) above it, preemptive
  // expand (add one) below it. Silence is simply shortened or lengthened.
  adapt(now) {
    if (this.sinceChange < Math.max(this.lastLag, WINDOW)) return;
    const delay = now - this.position - this.minOffset;
    const keep = 128 + GUARD; // never touch what the next quantum needs to play
    if (delay > this.target + (this.audible ? HIGH : HIGH_SILENT)) {
      const excess = delay - this.target;
      // In silence the clock jumps: the frames up to the new read point plus `keep` are decided
      // now, as they would be at the target delay (a missing one is silence).
      if (!this.audible) this.fill(Math.min(SYNC - FRAME, keep + excess));
      this.fillPresent(2 * T_MAX + WINDOW + keep);
      const n = this.silentPrefix(Math.min(excess, this.size - keep));
      if (n >= 128) {
        this.read = (this.read + n) & (SYNC - 1);
        this.size -= n;
        this.position += n;
        this.changed(n, 0, true);
        return;
      }
      if (this.size < 2 * T_MAX + WINDOW + keep) return;
      this.findPeriod();
      if (this.correlation < PERIODIC && this.peak(2 * T_MAX) >= SILENT) return this.changed(0, 0, false);
      const t = this.lag;
      for (let i = 0; i < t; i++) {
        const w = (i + 0.5) / t;
        const j = (this.read + t + i) & (SYNC - 1);
        this.sync[j] = this.at(i) * (1 - w) + this.sync[j] * w;
        if (this.stereo) this.sync2[j] = this.at2(i) * (1 - w) + this.sync2[j] * w;
      }
      this.read = (this.read + t) & (SYNC - 1);
      this.size -= t;
      this.position += t;
      this.changed(t, t, true);
    } else if (delay < this.target - LOW) {
      const deficit = this.target - delay;
      if (!this.inSound && this.peak(Math.min(this.size, WINDOW)) < SILENT) {
        const n = Math.min(deficit, FRAME, SYNC - FRAME - this.size);
        if (n <= 0) return;
        this.read = (this.read - n) & (SYNC - 1);
        for (let i = 0; i < n; i++) this.sync[(this.read + i) & (SYNC - 1)] = 0;
        if (this.stereo) for (let i = 0; i < n; i++) this.sync2[(this.read + i) & (SYNC - 1)] = 0;
        this.size += n;
        this.position -= n;
        this.changed(n, 0, false);
        return;
      }
      this.fillPresent(T_MAX + WINDOW + keep);
      if (this.size < T_MAX + WINDOW + keep || this.size + T_MAX > SYNC - FRAME) return;
      this.findPeriod();
      if (this.correlation < PERIODIC && this.peak(2 * T_MAX) >= SILENT) return this.changed(0, 0, false);
      const t = this.lag;
      const from = (this.read - t) & (SYNC - 1);
      for (let i = 0; i < t; i++) this.sync[(from + i) & (SYNC - 1)] = this.at(i);
      if (this.stereo) for (let i = 0; i < t; i++) this.sync2[(from + i) & (SYNC - 1)] = this.at2(i);
      for (let i = 0; i < t; i++) {
        const w = (i + 0.5) / t;
        const j = (this.read + i) & (SYNC - 1);
        this.sync[j] = this.at(t + i) * (1 - w) + this.sync[(from + i) & (SYNC - 1)] * w;
        if (this.stereo) this.sync2[j] = this.at2(t + i) * (1 - w) + this.sync2[(from + i) & (SYNC - 1)] * w;
      }
      this.read = from;
      this.size += t;
      this.position -= t;
      this.changed(t, t, false);
    }
  }

  // The sync buffer ran dry inside sound (the frame asked for is late): plays the last pitch
  // period again, so the delay grows without a gap; gives the frame up after MAX_STALL.
  bridge() {
    if (!this.audible) return false;
    if (this.stall === 0) this.counters.underruns += 1;
    if (this.stall >= MAX_STALL) {
      this.counters.givenUp += 1;
      this.append(false);
      return true;
    }
    this.findPeriod(-(T_MAX + WINDOW));
    const t = this.correlation >= 0.5 ? this.lag : WINDOW;
    const from = (this.read - t) & (SYNC - 1);
    for (let i = 0; i < t; i++) this.sync[(from + i) & (SYNC - 1)] *= BRIDGE_GAIN;
    if (this.stereo) for (let i = 0; i < t; i++) this.sync2[(from + i) & (SYNC - 1)] *= BRIDGE_GAIN;
    this.read = from;
    this.size = t;
    this.position -= t;
    this.stall += t;
    this.counters.stalledSamples += t;
    return true;
  }

  // Books one time-scale change of `samples` (0: a segment found unfit, retried a little later).
  changed(samples, lag, faster) {
    this.sinceChange = 0;
    this.lastLag = lag;
    if (samples === 0) return;
    if (faster) {
      this.counters.accelerated += 1;
      this.counters.acceleratedSamples += samples;
    } else {
      this.counters.expanded += 1;
      this.counters.expandedSamples += samples;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    const now = currentFrame;
    if (!this.idle) {
      this.adapt(now);
      this.fill(out.length + GUARD);
      let produced = 0;
      const right = this.stereo ? outputs[0][1] : null;
      while (produced < out.length && (this.size > 0 || this.bridge())) {
        const n = Math.min(out.length - produced, this.size);
        for (let i = 0; i < n; i++) out[produced + i] = this.sync[(this.read + i) & (SYNC - 1)];
        if (right) for (let i = 0; i < n; i++) right[produced + i] = this.sync2[(this.read + i) & (SYNC - 1)];
        this.read = (this.read + n) & (SYNC - 1);
        this.size -= n;
        this.position += n;
        this.sinceChange += n;
        produced += n;
      }
      if (produced < out.length) {
        this.counters.silentStallSamples += out.length - produced; // nothing to bridge from
      } else if (this.inSound) {
        const delay = (now - this.position - this.minOffset) / MS;
        this.delays[Math.max(0, Math.min(DELAY_BINS - 1, Math.round(delay)))] += 1;
      }
    }
    this.onsets.scan(out, now);
    const recording = this.recording;
    if (recording) {
      for (let i = 0; i < out.length; i++) recording[(this.recorded + i) % recording.length] = out[i];
      this.recorded += out.length;
    }
    for (let c = this.stereo ? 2 : 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }

  delayPercentile(q) {
    let total = 0;
    for (let i = 0; i < DELAY_BINS; i++) total += this.delays[i];
    if (total === 0) return null;
    let sum = 0;
    for (let i = 0; i < DELAY_BINS; i++) {
      sum += this.delays[i];
      if (sum >= q * total) return i;
    }
    return DELAY_BINS - 1;
  }

  stats() {
    const ms = (samples) => Math.round((samples / MS) * 10) / 10;
    const c = this.counters;
    return {
      type: "stats",
      playout: "adaptive",
      ...c,
      stalledMs: ms(c.stalledSamples),
      silentStallMs: ms(c.silentStallSamples),
      acceleratedMs: ms(c.acceleratedSamples),
      expandedMs: ms(c.expandedSamples),
      targetMs: ms(this.target),
      jitterP95Ms: ms(this.target - MARGIN),
      delayMs: this.idle ? null : ms(currentFrame - this.position - this.minOffset),
      delayP50Ms: this.delayPercentile(0.5),
      delayP95Ms: this.delayPercentile(0.95),
      buffered: this.size,
      inSound: this.inSound,
    };
  }

  recordingCopy() {
    const recording = this.recording;
    if (!recording) return { type: "recording", samples: new Float32Array(0), endFrame: currentFrame };
    const n = Math.min(this.recorded, recording.length);
    const samples = new Float32Array(n);
    for (let i = 0; i < n; i++) samples[i] = recording[(this.recorded - n + i) % recording.length];
    return { type: "recording", samples, endFrame: currentFrame };
  }
}

// The playout before issue #16, kept as the latency bench's baseline (audio.js selects it when
// the page sets window.salonPlayout = "fixed"): a ring that waits for 60 ms before it starts,
// outputs silence and primes again whenever it runs dry (every loss, late burst or silence),
// and trims the oldest samples back to 60 ms when it holds 120 ms more.
class FixedPlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.target = opts.target || 3 * FRAME;
    this.slack = opts.slack || 6 * FRAME;
    this.ring = new Float32Array(sampleRate);
    this.read = 0;
    this.size = 0;
    this.primed = false;
    this.underruns = 0;
    this.trimmed = 0;
    this.onsets = new OnsetDetector();
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data === "stats") {
        this.port.postMessage({ type: "stats", playout: "fixed", buffered: this.size, underruns: this.underruns, trimmed: this.trimmed, primed: this.primed });
      } else if (data === "onsets") {
        this.port.postMessage({ type: "onsets", frames: this.onsets.list() });
      } else if (data === "flush") {
        this.size = 0;
        this.primed = false;
      } else if (data.type === "frame" && data.samples) {
        this.push(data.samples);
      }
    };
  }

  push(samples) {
    const ring = this.ring;
    if (this.size + samples.length > ring.length) {
      const drop = this.size + samples.length - ring.length;
      this.read = (this.read + drop) % ring.length;
      this.size -= drop;
    }
    let write = (this.read + this.size) % ring.length;
    for (let i = 0; i < samples.length; i++) {
      ring[write] = samples[i];
      write = write + 1 === ring.length ? 0 : write + 1;
    }
    this.size += samples.length;
    if (this.size > this.target + this.slack) {
      const drop = this.size - this.target;
      this.read = (this.read + drop) % ring.length;
      this.size = this.target;
      this.trimmed += drop;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    const now = currentFrame;
    if (!this.primed && this.size >= this.target) this.primed = true;
    if (this.primed) {
      const n = Math.min(out.length, this.size);
      const ring = this.ring;
      for (let i = 0; i < n; i++) {
        out[i] = ring[this.read];
        this.read = this.read + 1 === ring.length ? 0 : this.read + 1;
      }
      this.size -= n;
      if (n < out.length) {
        this.primed = false;
        this.underruns += 1;
      }
    }
    this.onsets.scan(out, now);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

// Cuts the microphone (already resampled to the context's 48 kHz) into 960-sample blocks (per
// channel, planar: `processorOptions.channels` of them, 2 in stereo music mode) and posts them
// to the main thread, which encodes them. `active` is switched
// by the page: while muted nothing is posted at all. It also notes tone-burst onsets in what the
// microphone gives (the mouth-to-ear bench asks with "onsets").
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.channels = options?.processorOptions?.channels === 2 ? 2 : 1;
    this.block = new Float32Array(FRAME * this.channels);
    this.filled = 0;
    this.active = false;
    this.onsets = new OnsetDetector();
    this.port.onmessage = (event) => {
      if (event.data === "onsets") {
        this.port.postMessage({ type: "onsets", frames: this.onsets.list() });
        return;
      }
      this.active = !!event.data.active;
      this.filled = 0;
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    this.onsets.scan(input, currentFrame);
    if (!this.active) return true;
    let offset = 0;
    while (offset < input.length) {
      const n = Math.min(input.length - offset, FRAME - this.filled);
      for (let c = 0; c < this.channels; c++) {
        const channel = inputs[0][c] || input; // the node's explicit count: both are there
        this.block.set(channel.subarray(offset, offset + n), c * FRAME + this.filled);
      }
      this.filled += n;
      offset += n;
      if (this.filled === FRAME) {
        const block = this.block;
        this.port.postMessage(block, [block.buffer]);
        this.block = new Float32Array(FRAME * this.channels);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("salon-playback", PlayoutProcessor);
registerProcessor("salon-playback-fixed", FixedPlaybackProcessor);
registerProcessor("salon-capture", CaptureProcessor);
