"""Time-stretching (tsm.py), FEC decoding and the playout under impairment (playout.py)."""

import numpy as np

from spaces.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, OpusDecoder, OpusSettings, tsm
from spaces.audio.jitter import JitterBuffer, JitterSettings
from spaces.audio.playout import SpeakerPlayout

from .signals import encode, sine

PERIOD = SAMPLE_RATE / 440


def ideal_tone(start: float, count: int) -> np.ndarray:
    """A phase-continuous 440 Hz tone of amplitude 8000 from sample ``start``."""
    t = (start + np.arange(count)) / SAMPLE_RATE
    return 8000 * np.sin(2 * np.pi * 440 * t)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


def test_accelerate_removes_whole_periods_of_a_tone_and_keeps_its_phase():
    """Asked to remove up to 960 samples of a tone, accelerate removes 8 whole periods, and
    the result is the same tone later on, phase-continuous: ideal_tone(removed + n)."""
    tone = sine(440, 4)
    stretch = tsm.accelerate(tone, 960)
    removed = -stretch.change
    assert abs(removed / PERIOD - 8) < 0.05
    assert len(stretch.samples) == len(tone) - removed
    # The output continues the source: sample n is the source's n + removed (after the seam).
    assert correlation(stretch.samples, ideal_tone(removed, len(stretch.samples))) > 0.999


def test_preemptive_expand_adds_one_period_and_keeps_the_phase():
    """Expand lengthens a tone by one period; everything after the repeated period is the
    source one period earlier, so nothing jumps."""
    tone = sine(440, 2)
    stretch = tsm.preemptive_expand(tone)
    assert abs(stretch.change - PERIOD) < 1
    out = stretch.samples
    assert len(out) == len(tone) + stretch.change
    assert correlation(out[: stretch.change], tone[: stretch.change]) > 0.999
    assert correlation(out[stretch.change :], tone) > 0.999


def test_noise_is_not_stretched_but_quiet_sound_is():
    """Loud noise has no period (no seam would be inaudible): unchanged. Room tone below the
    talk threshold is cut by what is asked, whatever its shape."""
    rng = np.random.default_rng(0)
    loud = rng.normal(0, 4000, 3 * FRAME_SAMPLES).astype(np.int16)
    assert tsm.accelerate(loud, 960).change == 0
    quiet = rng.normal(0, 20, 3 * FRAME_SAMPLES).astype(np.int16)
    assert tsm.accelerate(quiet, 500).change == -500


def test_extend_continues_a_tone_in_phase():
    """Repeating the last period of a tone's history continues it: 960 samples later the
    extension is still within a sample of the ideal tone's phase."""
    history = sine(440, 2)
    period, corr = tsm.period_before_end(history)
    assert corr > 0.99 and abs(period - PERIOD) < 1
    extension = tsm.extend(history, period, 0, FRAME_SAMPLES)
    assert correlation(extension, ideal_tone(len(history), FRAME_SAMPLES)) > 0.99


def voiced(frames: int) -> np.ndarray:
    """Speech-like voicing: 140 Hz harmonics with vibrato and syllable-rate loudness, which
    PLC cannot extrapolate well and SILK codes LBRR for."""
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    pitch = 140 * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(8 * np.pi * t))
    return np.round(5000 * signal).astype(np.int16)


def test_fec_recovers_a_lost_frame_better_than_plc():
    """With in-band FEC on, a lost frame decoded from the next packet's FEC copy is much
    closer to what the frame decodes to than Opus PLC's guess."""
    packets = encode(voiced(60), OpusSettings(fec=True, packet_loss_percent=10))
    probe = OpusDecoder()
    assert probe.can_decode_fec
    lost = next(k for k in range(20, 55) if probe.has_fec(packets[k + 1]))
    reference = OpusDecoder()
    truth = [reference.decode(p) for p in packets][lost].astype(np.float64)

    def error(conceal) -> float:
        decoder = OpusDecoder()
        for packet in packets[:lost]:
            decoder.decode(packet)
        pcm = conceal(decoder).astype(np.float64)
        return float(((pcm - truth) ** 2).sum() / (truth**2).sum())

    with_fec = error(lambda d: d.decode_fec(packets[lost + 1]))
    with_plc = error(lambda d: d.conceal())
    assert with_fec < 0.1
    assert with_fec < with_plc / 3


def in_phase_under_impairment(time_stretch: bool, seed: int) -> tuple[float, float, object]:
    """A tone with 5 % loss and 0-40 ms jitter through jitter buffer + playout: the share of
    frames in phase (within 8 samples) with one continuous 440 Hz tone, the quietest 10 ms
    (peak), and the playout's counters."""
    frames = 300
    packets = encode(sine(440, frames))
    rng = np.random.default_rng(seed)
    arrivals = sorted(
        ((n + 1) * FRAME_SECONDS + rng.uniform(0, 0.040), n)
        for n in range(frames)
        if rng.random() >= 0.05
    )
    settings = JitterSettings(skip_lost_slots=not time_stretch)
    playout = SpeakerPlayout(JitterBuffer(settings), OpusDecoder(), time_stretch=time_stretch)
    index, out = 0, []
    for tick in range(frames):
        now = tick * FRAME_SECONDS + 0.007
        while index < len(arrivals) and arrivals[index][0] <= now:
            _, n = arrivals[index]
            playout.jitter.push(n, packets[n], arrivals[index][0])
            index += 1
        pcm = playout.next_frame(now)
        if pcm is not None:
            out.append(pcm.astype(np.float64))
    omega = 2 * np.pi * 440 / SAMPLE_RATE
    phases = []
    for k, pcm in enumerate(out[5:], start=5):
        n = np.arange(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES)
        phases.append(np.angle((pcm * np.exp(-1j * omega * n)).sum()))
    deviation = np.angle(np.exp(1j * (np.array(phases) - np.median(phases))))
    in_phase = float(np.mean(np.abs(deviation) / omega < 8))  # a frame skipped shifts by 22
    quietest = min(np.abs(pcm[i : i + 480]).max() for pcm in out[5:] for i in (0, 480))
    return in_phase, quietest, playout.stats


def test_playout_under_loss_and_jitter_keeps_the_tone_in_phase_better_than_whole_frames():
    """Under 5 % loss and 0-40 ms jitter the playout conceals, waits for late frames and
    gives delay back by pitch periods, and the tone stays in phase with its source far more
    of the time than with whole-frame adaptation (a frame skipped or repeated shifts the
    rest by 0.8 of a period), over three seeds; no 10 ms of it is silent."""
    ours, whole_frames = [], []
    for seed in (3, 4, 5):
        in_phase, quietest, stats = in_phase_under_impairment(True, seed)
        assert stats.concealed > 10 and stats.accelerated > 0 and stats.merged > 0
        assert quietest > 500, "a silent 10 ms"
        ours.append(in_phase)
        whole_frames.append(in_phase_under_impairment(False, seed)[0])
    assert np.mean(ours) > np.mean(whole_frames) + 0.2
