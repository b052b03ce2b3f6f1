// AudioWorklet processors of the space page (loaded by audio.js with audioWorklet.addModule).
// They run on the audio rendering thread, so their clock is the sound card's: playback timing
// follows it, never the arrival times of packets.

const FRAME = 960; // 20 ms at 48 kHz: one Opus frame (docs/audio.md)

// Plays decoded room-mix samples posted on its port (Float32Array, 48 kHz mono) through a ring
// buffer. It waits for `target` samples before it starts (priming) so network jitter is absorbed;
// when the buffer runs dry (a loss, a late burst, or DTX: a quiet room sends nothing) it outputs
// silence and primes again. When it holds more than `target + slack` (the server's clock running a
// little faster than ours, or a burst after a stall), it drops the oldest samples back to
// `target`, so latency cannot drift upward over a long session.
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.target = opts.target || 3 * FRAME; // 60 ms
    this.slack = opts.slack || 6 * FRAME; // allow 120 ms more before trimming
    this.ring = new Float32Array(sampleRate); // 1 s: far above target + slack
    this.read = 0;
    this.size = 0;
    this.primed = false;
    this.underruns = 0;
    this.trimmed = 0;
    this.port.onmessage = (event) => {
      if (event.data === "stats") {
        this.port.postMessage({ buffered: this.size, underruns: this.underruns, trimmed: this.trimmed, primed: this.primed });
        return;
      }
      if (event.data === "flush") {
        this.size = 0;
        this.primed = false;
        return;
      }
      this.push(event.data);
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
    if (!this.primed) {
      if (this.size < this.target) return true; // outputs are already zeroed: silence
      this.primed = true;
    }
    const n = Math.min(out.length, this.size);
    const ring = this.ring;
    for (let i = 0; i < n; i++) {
      out[i] = ring[this.read];
      this.read = this.read + 1 === ring.length ? 0 : this.read + 1;
    }
    this.size -= n;
    if (n < out.length) {
      // Ran dry: the rest of this quantum stays silent, and the next burst primes again.
      this.primed = false;
      this.underruns += 1;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

// Cuts the microphone (already resampled to the context's 48 kHz) into 960-sample blocks and
// posts them, with their RMS level, to the main thread, which encodes them. `active` is switched
// by the page: while muted nothing is posted at all.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(FRAME);
    this.filled = 0;
    this.active = false;
    this.port.onmessage = (event) => {
      this.active = !!event.data.active;
      this.filled = 0;
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!this.active || !input) return true;
    let offset = 0;
    while (offset < input.length) {
      const n = Math.min(input.length - offset, FRAME - this.filled);
      this.block.set(input.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === FRAME) {
        const block = this.block;
        this.port.postMessage(block, [block.buffer]);
        this.block = new Float32Array(FRAME);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("salon-playback", PlaybackProcessor);
registerProcessor("salon-capture", CaptureProcessor);
