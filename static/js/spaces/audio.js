// Live audio of the space page, on the space's own socket (binary frames, docs/audio.md).
//
// Listening: kind-2 frames → WebCodecs AudioDecoder (in sequence order; a lost frame is decoded
// as Opus PLC) → Float32 samples → the "salon-playback" AudioWorklet (a NetEq-like playout: a
// clock that runs through silence, a target delay from measured jitter, time-scale modification;
// docs/audio.md, "Browser playout") → the speakers, and an AnalyserNode that the
// `window.salonAudio` test hook reads.
// Speaking: microphone (echo cancellation, noise suppression and gain control on in speech mode,
// all off in music mode) → the same 48 kHz AudioContext → "salon-capture" worklet (960-sample
// blocks) → AudioEncoder (Opus, 20 ms, the space's audio mode's settings, in-band FEC while the
// server reports uplink loss) → one kind-1 frame per packet, numbered by us.

const RATE = 48000;
const FRAME = 960;
const HEADER = 10;
const KIND_SPEAKER = 1;
const KIND_MIX = 2;
// Big rooms send listeners several mix frames per message: [3, count, (uint16 length, frame)*].
const KIND_MIX_BUNDLE = 3;
const VOICE_RMS = 0.0056; // −45 dBFS, the mixer's own talking threshold: our flag only advises
// The uplink of each audio mode of a space: the same numbers as the server's
// spaces.audio.codec.AUDIO_MODES (docs/audio.md, "Codec" says why these).
const ENCODER_CONFIGS = {
  speech: { codec: "opus", sampleRate: RATE, numberOfChannels: 1, bitrate: 32000,
            opus: { frameDuration: 20000, application: "audio", complexity: 5 } },
  music: { codec: "opus", sampleRate: RATE, numberOfChannels: 1, bitrate: 96000,
           opus: { frameDuration: 20000, application: "audio", complexity: 5 } },
  music_stereo: { codec: "opus", sampleRate: RATE, numberOfChannels: 2, bitrate: 128000,
                  opus: { frameDuration: 20000, application: "audio", complexity: 5 } },
};
// The browser's voice processing per mode: music wants the instrument as it sounds, so no
// echo canceller, noise suppressor or gain control pumping it (listeners should use headphones).
const MIC_PROCESSING = {
  speech: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  music: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  music_stereo: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
};
// The decoder has the mode's channels: a stereo decoder plays a mono packet on both sides, a
// mono one downmixes a stereo packet, so packets of the old mode still in flight play either way.
const decoderConfig = (channels) => ({ codec: "opus", sampleRate: RATE, numberOfChannels: channels });
// Frames after a missing one wait (it may come late, or the worklet asks for its concealment
// when its turn comes) while the gap is at most this many frames (200 ms, above any usual
// target delay); a longer gap is silence (a quiet room sends nothing): decoding goes on.
const MAX_HOLD = 10;
// A sequence this far behind the last one is a new stream (another server process), not late.
const NEW_STREAM_BEHIND = 500;

// The TOC byte of a one-frame, 20 ms Opus packet in the same mode and bandwidth as `toc`. The
// decoder runs its packet loss concealment on such a packet (its one frame is 0 bytes long),
// as spaces/audio/codec.py does on the server (RFC 6716 §3.1: configs 0-11 SILK, four durations
// each; 12-15 hybrid, two each; 16-31 CELT, four each; 20 ms is the second, second, fourth).
export function tocFor20msPlc(toc) {
  let config = toc >> 3;
  if (config < 12) config = Math.floor(config / 4) * 4 + 1;
  else if (config < 16) config = Math.floor(config / 2) * 2 + 1;
  else config = Math.floor(config / 4) * 4 + 3;
  return (config << 3) | (toc & 0x04);
}

// Opus packets of a loud 20 ms frame are larger than this; the room's quiet frames are smaller
// (speech mode: room tone ~70 bytes, a loud burst ~145; bench/bench_fanout.py uses the same).
const LOUD_PACKET_BYTES = 110;

function mark(list) {
  list.push(performance.timeOrigin + performance.now());
  if (list.length > 64) list.shift();
}

// What this browser lacks for live audio, as a sentence for the member, or null.
export function missingAudioSupport() {
  if (!window.isSecureContext) return "Live audio needs a secure (https) connection.";
  if (!window.AudioContext || !window.AudioWorkletNode) return "This browser cannot play live audio (no AudioWorklet).";
  if (!window.AudioDecoder) return "This browser cannot play live audio (no WebCodecs). Try a recent Chrome, Edge or Safari.";
  return null;
}

export function missingMicrophoneSupport() {
  if (!navigator.mediaDevices?.getUserMedia) return "This browser gives no access to a microphone.";
  if (!window.AudioEncoder) return "This browser cannot send live audio (no WebCodecs AudioEncoder).";
  return null;
}

export class SpaceAudio {
  // send(ArrayBuffer) writes one binary frame to the socket (and drops it if not connected).
  // playout "fixed" selects the pre-#16 fixed 60 ms worklet (the latency bench's baseline).
  constructor({ send, onStateChange = () => {}, playout = "adaptive" }) {
    this.send = send;
    this.onStateChange = onStateChange;
    this.playout = playout === "fixed" ? "fixed" : "adaptive";
    this.context = null;
    this.playback = null;
    this.analyser = null;
    this.decoder = null;
    this.lastFrame = null; // unwrapped sequence of the newest mix frame
    this.expected = null; // the next frame the decoder is to get
    this.pending = new Map(); // frame → payload, held behind a missing one
    this.decoding = []; // frames given to the decoder, in order, whose output is to come
    this.plcToc = null; // TOC byte of a 20 ms packet like the last one decoded
    this.replies = new Map(); // reply type → resolvers, for bufferStats() and onsets
    // stereoSent / stereoReceived: packets whose TOC byte has the stereo bit (RFC 6716 §3.1).
    this.stats = { received: 0, bundles: 0, lost: 0, late: 0, concealed: 0, decodeErrors: 0, sent: 0, fec: 0, stereoSent: 0, stereoReceived: 0 };
    this.uplinkLoss = 0; // the server's last uplink.quality loss_percent for our stream
    // For the latency bench: when the first loud frame after a quiet stretch was sent (by a
    // speaker) or arrived (at a listener), as performance.timeOrigin + now, the last 64.
    this.marks = { sent: [], arrived: [] };
    this.lastLoudFrame = -Infinity;
    this.quietBlocks = 0;
    this.mic = null; // {stream, source, capture, encoder}
    this.sending = false;
    this.sequence = 0;
    this.timestamp = 0;
    this.captureClock = 0; // samples handed to the encoder, for AudioData timestamps
    this.level = 0;
    this.audioMode = "speech";
    this.channels = 1; // of the room's mix: the decoder's and the playout's
  }

  // Sets up playback; the context may come up "suspended" (autoplay rules): see `blocked`.
  async start() {
    // latencyHint 0: the smallest device buffer the platform has. Chromium on Linux gives
    // "interactive" (and any hint up to 10 ms) a 512-frame callback and reports 42 ms of output
    // latency; 0 gives 128 frames and 10.7 ms, a third of the mouth-to-ear budget saved
    // (docs/audio.md, "Mouth-to-ear latency"). The capture worklet shares the context, so the
    // microphone's blocks also leave every 2.7 ms instead of every 10.7 ms, with that much less
    // uplink jitter for the server's buffer to cover.
    this.context = new AudioContext({ sampleRate: RATE, latencyHint: 0 });
    this.context.addEventListener("statechange", () => this.onStateChange());
    await this.context.audioWorklet.addModule(new URL("./worklet.js", import.meta.url));
    const processor = this.playout === "fixed" ? "salon-playback-fixed" : "salon-playback";
    // Two outputs: a stereo room plays its sides; a mono one the same on both.
    this.playback = new AudioWorkletNode(this.context, processor, {
      numberOfInputs: 0,
      outputChannelCount: [2],
    });
    this.playback.port.onmessage = (event) => this.fromPlayback(event.data);
    if (this.channels === 2) this.playback.port.postMessage({ type: "channels", channels: 2 });
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 8192;
    this.analyser.smoothingTimeConstant = 0.5;
    this.playback.connect(this.context.destination);
    this.playback.connect(this.analyser);
    this.openDecoder();
    this.onStateChange();
  }

  get blocked() {
    return !!this.context && this.context.state === "suspended";
  }

  // Call from a click ("Tap to listen"): browsers only let a gesture start sound.
  resume() {
    return this.context?.resume();
  }

  openDecoder() {
    this.decoding = [];
    this.decoder = new AudioDecoder({
      output: (data) => this.decoded(data),
      error: () => {
        // A closed decoder takes no more packets: count it and open a fresh one. The frames it
        // held are gone; the worklet asks for them again and gets concealment.
        this.stats.decodeErrors += 1;
        this.openDecoder();
      },
    });
    this.decoder.configure(decoderConfig(this.channels));
  }

  // One decoded frame: outputs come in the order packets went in, one per packet.
  // A stereo frame goes to the worklet as its left (`samples`) and right channel.
  decoded(data) {
    const entry = this.decoding.shift();
    const samples = new Float32Array(data.numberOfFrames);
    data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
    let right = null;
    if (data.numberOfChannels > 1) {
      right = new Float32Array(data.numberOfFrames);
      data.copyTo(right, { planeIndex: 1, format: "f32-planar" });
    }
    data.close();
    if (!entry) return;
    const transfer = right ? [samples.buffer, right.buffer] : [samples.buffer];
    this.playback.port.postMessage({ type: "frame", frame: entry.frame, samples, right, kind: entry.kind }, transfer);
  }

  fromPlayback(data) {
    if (typeof data === "number") {
      this.conceal(data);
      return;
    }
    const waiting = this.replies.get(data.type);
    if (waiting && waiting.length) waiting.shift()(data);
  }

  ask(request, type) {
    return new Promise((resolve) => {
      if (!this.replies.has(type)) this.replies.set(type, []);
      this.replies.get(type).push(resolve);
      this.playback.port.postMessage(request);
    });
  }

  // One binary message from the socket: a mix frame, or a bundle of them.
  receive(buffer) {
    if (!this.decoder || buffer.byteLength < 2) return;
    const view = new DataView(buffer);
    if (view.getUint8(0) !== KIND_MIX_BUNDLE) {
      this.receiveFrame(buffer, 0, buffer.byteLength);
      return;
    }
    this.stats.bundles += 1;
    const count = view.getUint8(1);
    let offset = 2;
    for (let i = 0; i < count && offset + 2 <= buffer.byteLength; i += 1) {
      const length = view.getUint16(offset);
      offset += 2;
      if (offset + length > buffer.byteLength) return;  // truncated: drop the rest
      this.receiveFrame(buffer, offset, length);
      offset += length;
    }
  }

  // One mix frame at [offset, offset + length) of the message. Its sequence (the server's tick)
  // is unwrapped to a growing frame number: the worklet places it on its playout clock by it.
  receiveFrame(buffer, offset, length) {
    if (length <= HEADER) return;
    const view = new DataView(buffer, offset, length);
    if (view.getUint8(0) !== KIND_MIX) return;
    const sequence = view.getUint32(2);
    let frame = sequence;
    if (this.lastFrame !== null) {
      const step = (sequence - (this.lastFrame >>> 0)) | 0; // int32: the shortest way round
      if (step < -NEW_STREAM_BEHIND) {
        this.resetStream(); // another tick numbering: a new stream, not 10 s of late frames
      } else {
        frame = this.lastFrame + step;
      }
    }
    if (this.lastFrame === null || frame > this.lastFrame) {
      // Counted only: a gap is a loss or DTX silence; which one, the worklet's clock decides.
      if (this.lastFrame !== null && frame - this.lastFrame - 1 < 50) this.stats.lost += frame - this.lastFrame - 1;
      this.lastFrame = frame;
    }
    this.stats.received += 1;
    if (view.getUint8(HEADER) & 0x04) this.stats.stereoReceived += 1;
    if (length - HEADER >= LOUD_PACKET_BYTES) {
      if (frame - this.lastLoudFrame > 10) mark(this.marks.arrived);
      this.lastLoudFrame = frame;
    }
    if (this.playout === "adaptive") this.playback.port.postMessage({ type: "arrive", frame });
    // The payload is copied: the frame may wait in `pending` after the message is gone.
    const payload = new Uint8Array(buffer.slice(offset + HEADER, offset + length));
    if (this.playout === "fixed") {
      this.decode(frame, payload, "audio"); // the baseline decodes as frames come
      return;
    }
    if (this.expected === null) this.expected = frame;
    if (frame < this.expected) {
      this.stats.late += 1; // its turn at the decoder passed (concealed or played as silence)
      return;
    }
    if (frame > this.expected) {
      this.pending.set(frame, payload);
      if (frame - this.expected > MAX_HOLD) {
        // A long gap is silence (or a burst of loss the worklet plays as silence): go on.
        this.expected = Math.min(...this.pending.keys());
        this.decodeInOrder();
      }
      return;
    }
    this.pending.set(frame, payload);
    this.decodeInOrder();
  }

  // Decodes the held frames from `expected` on for as long as they follow each other.
  decodeInOrder() {
    while (this.pending.has(this.expected)) {
      const payload = this.pending.get(this.expected);
      this.pending.delete(this.expected);
      this.decode(this.expected, payload, "audio");
      this.expected += 1;
    }
  }

  decode(frame, payload, kind) {
    if (!this.decoder || this.decoder.state !== "configured") return;
    this.decoding.push({ frame, kind });
    this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: Math.round((frame * FRAME / RATE) * 1e6), data: payload }));
    if (kind === "audio") this.plcToc = tocFor20msPlc(payload[0]);
  }

  // The worklet is about to play `frame` and lacks it. If the decoder already has it, its output
  // is on the way. Otherwise it is lost or too late: Opus PLC stands in (the decoder's state
  // stays continuous, and the real frame, if it comes, is dropped as late); frames skipped as
  // silence, or a stream with nothing decoded yet, get silence.
  conceal(frame) {
    if (frame < this.expected && this.decoding.some((entry) => entry.frame === frame)) return;
    if (this.expected === null || frame < this.expected || this.plcToc === null) {
      this.playback.port.postMessage({ type: "frame", frame, samples: null, kind: "silent" });
      return;
    }
    for (const held of this.pending.keys()) if (held < frame) this.pending.delete(held);
    if (this.pending.has(frame)) {
      this.expected = frame; // it came meanwhile
    } else {
      this.stats.concealed += 1;
      this.decode(frame, new Uint8Array([this.plcToc]), "concealed");
      this.expected = frame + 1;
    }
    this.decodeInOrder();
  }

  // Every member, listener or speaker: the room's mix has the channels of the space's mode.
  followMix(mode) {
    if (mode in ENCODER_CONFIGS) this.setChannels(ENCODER_CONFIGS[mode].numberOfChannels);
  }

  // The room's mix is mono or stereo from now on: the decoder and the playout follow. The
  // decoder is configured again (its state is per channel layout); the frames it held are
  // concealed, as after a decode error.
  setChannels(channels) {
    if (channels === this.channels) return;
    this.channels = channels;
    this.playback?.port.postMessage({ type: "channels", channels });
    if (this.decoder && this.decoder.state !== "closed") {
      this.decoder.close();
      this.openDecoder();
    }
  }

  // The socket was replaced (reconnect): the server's tick numbering starts afresh for us.
  resetStream() {
    this.lastFrame = null;
    this.expected = null;
    this.pending.clear();
    this.playback?.port.postMessage("flush");
  }

  get hasMicrophone() {
    return this.mic !== null;
  }

  // The space's audio mode ("speech", "music" or "music_stereo"). The next packets use its
  // encoder settings (channels too: stereo captures and sends two); an
  // open microphone is opened again with the mode's voice processing (browsers cannot switch
  // echo cancellation or noise suppression on a live track), and sending goes on.
  async setAudioMode(mode) {
    if (!(mode in ENCODER_CONFIGS) || mode === this.audioMode) return;
    this.audioMode = mode;
    this.followMix(mode);
    if (!this.mic) return;
    this.closeMicrophone();
    await this.openMicrophone();
  }

  // Opens the microphone (on becoming a speaker); sending starts only with setSending(true).
  async openMicrophone() {
    if (this.mic) return;
    const mode = this.audioMode;
    const channels = ENCODER_CONFIGS[mode].numberOfChannels;
    // A stereo mode asks for two channels; a mono microphone still gives one, which the
    // capture node's explicit channel count spreads over both (the server hears it centred).
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: channels, sampleRate: RATE, ...MIC_PROCESSING[mode] },
    });
    if (this.mic) { // two calls raced: keep the first
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    if (mode !== this.audioMode) { // the mode changed while the browser asked: ask again
      stream.getTracks().forEach((track) => track.stop());
      await this.openMicrophone();
      return;
    }
    const source = this.context.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(this.context, "salon-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: channels,
      channelCountMode: "explicit",
      processorOptions: { channels },
    });
    capture.port.onmessage = (event) => this.captured(event.data);
    source.connect(capture);
    // Connected so the graph pulls it; it outputs silence.
    capture.connect(this.context.destination);
    this.mic = { stream, source, capture, encoder: null, channels };
    stream.getAudioTracks().forEach((track) => track.addEventListener("ended", () => this.closeMicrophone()));
    if (this.sending) this.startEncoder();
  }

  // Releases the microphone (leaving, demotion, removal): the browser's mic indicator goes off.
  closeMicrophone() {
    const mic = this.mic;
    if (!mic) return;
    this.mic = null;
    this.stopEncoder(mic);
    mic.capture.port.onmessage = null;
    mic.source.disconnect();
    mic.capture.disconnect();
    mic.stream.getTracks().forEach((track) => track.stop());
  }

  // Mute stops at once: no block is captured, no pending packet is sent.
  setSending(on) {
    if (this.sending === on) return;
    this.sending = on;
    if (on) this.startEncoder();
    else if (this.mic) this.stopEncoder(this.mic);
  }

  startEncoder() {
    const mic = this.mic;
    if (!mic || mic.encoder) return;
    const encoder = new AudioEncoder({
      output: (chunk) => this.encoded(encoder, chunk),
      error: () => {
        if (mic.encoder === encoder) mic.encoder = null;
        if (this.sending && this.mic === mic) this.startEncoder();
      },
    });
    encoder.configure(this.encoderConfig());
    mic.encoder = encoder;
    mic.capture.port.postMessage({ active: true });
  }

  // The encoder settings for the loss the server last reported on our uplink: in-band FEC (the
  // next packet carries a low-bitrate copy of this one) only while loss is seen, tuned to it;
  // off again at 0 %, where it would only spend bits.
  encoderConfig() {
    const config = ENCODER_CONFIGS[this.audioMode];
    if (this.uplinkLoss <= 0) return config;
    return {
      ...config,
      opus: { ...config.opus, useinbandfec: true, packetlossperc: this.uplinkLoss },
    };
  }

  // The server's `uplink.quality` report on the frames we publish (docs/protocol.md).
  setUplinkLoss(lossPercent) {
    const loss = Math.max(0, Math.min(100, Math.round(Number(lossPercent) || 0)));
    if (loss === this.uplinkLoss) return;
    this.uplinkLoss = loss;
    this.stats.fec = loss > 0 ? 1 : 0;
    const encoder = this.mic?.encoder;
    // Reconfiguring a running encoder keeps it (and its frame numbering) going.
    if (encoder && encoder.state === "configured") encoder.configure(this.encoderConfig());
  }

  stopEncoder(mic) {
    mic.capture.port.postMessage({ active: false });
    const encoder = mic.encoder;
    mic.encoder = null;
    if (encoder && encoder.state !== "closed") encoder.close(); // drops what it still holds
    this.level = 0;
  }

  // One block from the capture worklet: 960 samples per channel, planar (left, then right).
  captured(block) {
    const encoder = this.mic?.encoder;
    if (!this.sending || !encoder || encoder.state !== "configured") return;
    let energy = 0;
    for (let i = 0; i < block.length; i++) energy += block[i] * block[i];
    this.level = Math.sqrt(energy / block.length);
    const channels = this.mic.channels;
    const data = new AudioData({
      format: "f32-planar",
      sampleRate: RATE,
      numberOfFrames: block.length / channels,
      numberOfChannels: channels,
      timestamp: Math.round((this.captureClock / RATE) * 1e6),
      data: block,
    });
    this.captureClock += block.length / channels;
    encoder.encode(data);
    data.close();
  }

  encoded(encoder, chunk) {
    if (!this.sending || this.mic?.encoder !== encoder) return; // muted meanwhile: never sent
    if (chunk.byteLength < 1 || chunk.byteLength > 1275) return;
    const frame = new Uint8Array(HEADER + chunk.byteLength);
    const view = new DataView(frame.buffer);
    view.setUint8(0, KIND_SPEAKER);
    view.setUint8(1, this.level >= VOICE_RMS ? 1 : 0);
    view.setUint32(2, this.sequence >>> 0);
    view.setUint32(6, this.timestamp >>> 0);
    chunk.copyTo(frame.subarray(HEADER));
    this.sequence = (this.sequence + 1) >>> 0;
    this.timestamp = (this.timestamp + FRAME) >>> 0;
    if (this.level >= VOICE_RMS) {
      if (this.quietBlocks >= 10) mark(this.marks.sent);
      this.quietBlocks = 0;
    } else {
      this.quietBlocks += 1;
    }
    this.send(frame.buffer);
    this.stats.sent += 1;
    if (frame[HEADER] & 0x04) this.stats.stereoSent += 1;
  }

  close() {
    this.closeMicrophone();
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
    this.context?.close();
  }

  // --- Test and diagnostics hook (window.salonAudio) ------------------------------------------

  // The frequency (Hz) of the loudest analyser bin above 50 Hz, or null when all is quieter than
  // −90 dBFS.
  dominantFrequency() {
    const bins = this.spectrum();
    if (!bins) return null;
    const binHz = this.context.sampleRate / this.analyser.fftSize;
    let best = -1;
    for (let i = Math.ceil(50 / binHz); i < bins.length; i++) if (best < 0 || bins[i] > bins[best]) best = i;
    return bins[best] < -90 ? null : best * binHz;
  }

  // The loudest level (dBFS) within ±10 Hz of `hz` in what is being played.
  bandLevel(hz) {
    const bins = this.spectrum();
    if (!bins) return -Infinity;
    const binHz = this.context.sampleRate / this.analyser.fftSize;
    let level = -Infinity;
    for (let i = Math.floor((hz - 10) / binHz); i <= Math.ceil((hz + 10) / binHz); i++) {
      if (i >= 0 && i < bins.length) level = Math.max(level, bins[i]);
    }
    return level;
  }

  // The open microphone's voice processing as the browser applied it, or null.
  microphoneProcessing() {
    const track = this.mic?.stream.getAudioTracks()[0];
    if (!track) return null;
    const { echoCancellation, noiseSuppression, autoGainControl } = track.getSettings();
    return { echoCancellation, noiseSuppression, autoGainControl };
  }

  spectrum() {
    if (!this.analyser) return null;
    const bins = new Float32Array(this.analyser.frequencyBinCount);
    this.analyser.getFloatFrequencyData(bins);
    return bins;
  }

  // The playout worklet's counters: underruns (stalls inside sound), accelerated/expanded
  // (time-scale changes, and the ms they took out or added), late, givenUp, targetMs, delayMs,
  // delayP50Ms/delayP95Ms (of what was played), plus our own concealed count.
  async bufferStats() {
    if (!this.playback) return null;
    const stats = await this.ask("stats", "stats");
    return { ...stats, concealed: this.stats.concealed };
  }

  // For the latency bench: the context frames at which tone bursts started in what the worklet
  // played and in what the microphone gave, mapped to performance.timeOrigin + now (ms).
  async onsets() {
    const played = (await this.ask("onsets", "onsets")).frames;
    const captured = this.mic ? await this.captureOnsets() : [];
    const context = this.context;
    const stamp = context.getOutputTimestamp();
    const now = performance.now();
    const origin = performance.timeOrigin;
    // Output: a frame is heard when the device plays it; getOutputTimestamp() maps the frame
    // being output now to performance time (it already lags currentTime by the output latency).
    const heard = played.map((f) => origin + stamp.performanceTime + (f / RATE - stamp.contextTime) * 1000);
    // Input: the capture worklet saw the samples when it rendered that frame, about now minus
    // the frames rendered since (the fake device's own capture delay is not included).
    const seen = captured.map((f) => origin + now - (context.currentTime - f / RATE) * 1000);
    // The context frames too: a render-thread glitch moves the context clock against
    // performance time for good, so the bench maps each onset at the first call after it.
    return { heard, seen, played, captured, ...this.marks, outputLatency: context.outputLatency, baseLatency: context.baseLatency };
  }

  captureOnsets() {
    return new Promise((resolve) => {
      const port = this.mic.capture.port;
      const previous = port.onmessage;
      port.onmessage = (event) => {
        if (event.data && event.data.type === "onsets") {
          port.onmessage = previous;
          resolve(event.data.frames);
        } else {
          previous(event);
        }
      };
      port.postMessage("onsets");
    });
  }

  // Keeps the last `seconds` of what the worklet plays, for recording().
  record(seconds) {
    this.playback.port.postMessage({ type: "record", seconds });
  }

  async recording() {
    const reply = await this.ask("recording", "recording");
    return Array.from(reply.samples);
  }
}
