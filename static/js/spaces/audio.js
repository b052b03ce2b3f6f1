// Live audio of the space page, on the space's own socket (binary frames, docs/audio.md).
//
// Listening: kind-2 frames → WebCodecs AudioDecoder → Float32 samples → the "salon-playback"
// AudioWorklet (a small ring buffer: absorbs jitter, plays gaps as silence, never drifts) → the
// speakers, and an AnalyserNode that the `window.salonAudio` test hook reads.
// Speaking: microphone (echo cancellation, noise suppression and gain control on in speech mode,
// all off in music mode) → the same 48 kHz AudioContext → "salon-capture" worklet (960-sample
// blocks) → AudioEncoder (Opus, 20 ms, the space's audio mode's settings) → one kind-1 frame per
// packet, numbered by us.

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
};
// The browser's voice processing per mode: music wants the instrument as it sounds, so no
// echo canceller, noise suppressor or gain control pumping it (listeners should use headphones).
const MIC_PROCESSING = {
  speech: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  music: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
};
const DECODER_CONFIG = { codec: "opus", sampleRate: RATE, numberOfChannels: 1 };

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
  constructor({ send, onStateChange = () => {} }) {
    this.send = send;
    this.onStateChange = onStateChange;
    this.context = null;
    this.playback = null;
    this.analyser = null;
    this.decoder = null;
    this.lastSequence = null;
    this.stats = { received: 0, bundles: 0, lost: 0, decodeErrors: 0, sent: 0 };
    this.mic = null; // {stream, source, capture, encoder}
    this.sending = false;
    this.sequence = 0;
    this.timestamp = 0;
    this.captureClock = 0; // samples handed to the encoder, for AudioData timestamps
    this.level = 0;
    this.audioMode = "speech";
  }

  // Sets up playback; the context may come up "suspended" (autoplay rules): see `blocked`.
  async start() {
    this.context = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
    this.context.addEventListener("statechange", () => this.onStateChange());
    await this.context.audioWorklet.addModule(new URL("./worklet.js", import.meta.url));
    this.playback = new AudioWorkletNode(this.context, "salon-playback", {
      numberOfInputs: 0,
      outputChannelCount: [1],
      processorOptions: { target: 3 * FRAME, slack: 6 * FRAME },
    });
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
    this.decoder = new AudioDecoder({
      output: (data) => this.played(data),
      error: () => {
        // A closed decoder takes no more packets: count it and open a fresh one.
        this.stats.decodeErrors += 1;
        this.openDecoder();
      },
    });
    this.decoder.configure(DECODER_CONFIG);
  }

  played(data) {
    const samples = new Float32Array(data.numberOfFrames);
    data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
    data.close();
    this.playback.port.postMessage(samples, [samples.buffer]);
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

  // One mix frame at [offset, offset + length) of the message.
  receiveFrame(buffer, offset, length) {
    if (length <= HEADER) return;
    const view = new DataView(buffer, offset, length);
    if (view.getUint8(0) !== KIND_MIX) return;
    const sequence = view.getUint32(2);
    const timestamp = view.getUint32(6);
    if (this.lastSequence !== null) {
      // Counted only: a gap is a loss or DTX silence, and the worklet plays both as silence.
      const gap = (sequence - this.lastSequence - 1) >>> 0;
      if (gap > 0 && gap < 50) this.stats.lost += gap;
    }
    this.lastSequence = sequence;
    this.stats.received += 1;
    if (this.decoder.state !== "configured") return;
    this.decoder.decode(new EncodedAudioChunk({
      type: "key",
      timestamp: Math.round((timestamp / RATE) * 1e6),
      data: new Uint8Array(buffer, offset + HEADER, length - HEADER),
    }));
  }

  // The socket was replaced (reconnect): the server's tick numbering starts afresh for us.
  resetStream() {
    this.lastSequence = null;
    this.playback?.port.postMessage("flush");
  }

  get hasMicrophone() {
    return this.mic !== null;
  }

  // The space's audio mode ("speech" or "music"). The next packets use its encoder settings; an
  // open microphone is opened again with the mode's voice processing (browsers cannot switch
  // echo cancellation or noise suppression on a live track), and sending goes on.
  async setAudioMode(mode) {
    if (!(mode in ENCODER_CONFIGS) || mode === this.audioMode) return;
    this.audioMode = mode;
    if (!this.mic) return;
    this.closeMicrophone();
    await this.openMicrophone();
  }

  // Opens the microphone (on becoming a speaker); sending starts only with setSending(true).
  async openMicrophone() {
    if (this.mic) return;
    const mode = this.audioMode;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, sampleRate: RATE, ...MIC_PROCESSING[mode] },
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
      channelCount: 1,
      channelCountMode: "explicit",
    });
    capture.port.onmessage = (event) => this.captured(event.data);
    source.connect(capture);
    // Connected so the graph pulls it; it outputs silence.
    capture.connect(this.context.destination);
    this.mic = { stream, source, capture, encoder: null };
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
    encoder.configure(ENCODER_CONFIGS[this.audioMode]);
    mic.encoder = encoder;
    mic.capture.port.postMessage({ active: true });
  }

  stopEncoder(mic) {
    mic.capture.port.postMessage({ active: false });
    const encoder = mic.encoder;
    mic.encoder = null;
    if (encoder && encoder.state !== "closed") encoder.close(); // drops what it still holds
    this.level = 0;
  }

  captured(block) {
    const encoder = this.mic?.encoder;
    if (!this.sending || !encoder || encoder.state !== "configured") return;
    let energy = 0;
    for (let i = 0; i < block.length; i++) energy += block[i] * block[i];
    this.level = Math.sqrt(energy / block.length);
    const data = new AudioData({
      format: "f32-planar",
      sampleRate: RATE,
      numberOfFrames: block.length,
      numberOfChannels: 1,
      timestamp: Math.round((this.captureClock / RATE) * 1e6),
      data: block,
    });
    this.captureClock += block.length;
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
    this.send(frame.buffer);
    this.stats.sent += 1;
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

  async bufferStats() {
    if (!this.playback) return null;
    return new Promise((resolve) => {
      const port = this.playback.port;
      const previous = port.onmessage;
      port.onmessage = (event) => { port.onmessage = previous; resolve(event.data); };
      port.postMessage("stats");
    });
  }
}
