"""Stereo music mode through the engine: codec, time-stretching, playout and mixer."""

import numpy as np
import pytest

from spaces.audio import (
    AUDIO_MODES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    OpusDecoder,
    OpusEncoder,
    OpusSettings,
    RoomMixer,
    packet_is_stereo,
    tsm,
)

from .signals import (
    amplitude_at,
    best_lag_correlation,
    chord,
    decode,
    encode,
    rms,
    sine,
    split_frames,
    stereo,
)

STEREO = AUDIO_MODES["music_stereo"]
MUSIC = AUDIO_MODES["music"]
SETTLED = 20 * FRAME_SAMPLES  # past the codecs' start-up


def sides(signal: np.ndarray, frequency: float) -> tuple[float, float]:
    """Amplitude of ``frequency`` in the left and the right channel (after start-up)."""
    settled = signal[SETTLED:]
    return amplitude_at(settled[:, 0], frequency), amplitude_at(settled[:, 1], frequency)


def test_music_stereo_is_music_in_two_channels():
    """The stereo mode is the music mode's codec with two channels and a higher bitrate."""
    assert STEREO.channels == 2 and MUSIC.channels == 1 and AUDIO_MODES["speech"].channels == 1
    assert STEREO.application == MUSIC.application
    assert STEREO.bitrate > MUSIC.bitrate
    with pytest.raises(ValueError, match="channels"):
        OpusSettings(channels=3)


@pytest.mark.parametrize("use_libopus", [True, False])
def test_stereo_packets_keep_their_sides_and_mono_ones_play_on_both(use_libopus):
    """A left-only tone stays left through a stereo encode/decode (libopus and PyAV paths);
    a mono packet comes out the same on both channels; the TOC s bit tells them apart."""
    packets = encode(stereo(sine(440, 50), None), STEREO)
    assert all(packet_is_stereo(packet) for packet in packets)
    decoder = OpusDecoder(channels=2, use_libopus=use_libopus)
    heard = np.concatenate([decoder.decode(packet) for packet in packets])
    assert heard.shape == (50 * FRAME_SAMPLES, 2)
    left, right = sides(heard, 440)
    assert left > 7000 and right < 0.01 * left

    mono = encode(sine(660, 50), MUSIC)
    assert not any(packet_is_stereo(packet) for packet in mono)
    decoder = OpusDecoder(channels=2, use_libopus=use_libopus)
    upmixed = np.concatenate([decoder.decode(packet) for packet in mono])
    assert np.array_equal(upmixed[:, 0], upmixed[:, 1])
    assert rms(upmixed[SETTLED:, 0]) > 4000
    assert decoder.conceal().shape == (FRAME_SAMPLES, 2)


def test_a_mono_decoder_downmixes_a_stereo_packet():
    """A mono room's decoder plays a stereo uplink as its mid signal (nothing is lost)."""
    heard = decode(encode(stereo(sine(440, 50), sine(660, 50)), STEREO))
    assert heard.ndim == 1
    assert amplitude_at(heard[SETTLED:], 440) > 2500
    assert amplitude_at(heard[SETTLED:], 660) > 2500


def test_a_stereo_encoder_codes_a_mono_frame_on_both_sides():
    """space_client's mono source in a stereo room: the frame is sent centred."""
    packets = [OpusEncoder(STEREO).encode(frame) for frame in split_frames(sine(440, 50))]
    assert all(packet_is_stereo(packet) for packet in packets)
    left, right = sides(decode(packets, channels=2), 440)
    assert left > 7000 and abs(left - right) < 0.02 * left


def test_accelerate_and_expand_cut_both_channels_at_the_same_sample():
    """Time-stretching a stereo tone removes or repeats the same whole periods on both sides,
    so the right channel (half the left) stays exactly in step with the left one."""
    left = sine(400, 4)  # a 120-sample period
    signal = np.stack([left, (left // 2).astype(np.int16)], axis=1)
    for stretch in (tsm.accelerate(signal, 480), tsm.preemptive_expand(signal)):
        assert stretch.change != 0 and stretch.change % 120 == 0
        out = stretch.samples.astype(np.int32)
        assert out.shape == (len(signal) + stretch.change, 2)
        assert np.abs(out[:, 1] - out[:, 0] / 2).max() <= 1.5
        mono = tsm.accelerate(left, 480) if stretch.change < 0 else tsm.preemptive_expand(left)
        assert mono.change == stretch.change


def test_extend_continues_each_channel_in_its_own_phase():
    """Concealment by pitch repetition continues each side of a stereo tone seamlessly."""
    history = stereo(sine(400, 2), sine(400, 2, amplitude=-3000))
    extension = tsm.extend(history, 120.0, 0, FRAME_SAMPLES)
    assert extension.shape == (FRAME_SAMPLES, 2)
    expected = stereo(sine(400, 3), sine(400, 3, amplitude=-3000))[2 * FRAME_SAMPLES :]
    assert np.abs(extension.astype(np.int32) - expected).max() <= 2


def run_room(mixer: RoomMixer, uplinks: dict[str, list[bytes]], *, jitter=None):
    """Each speaker's packets pushed on time (plus ``jitter(speaker, n)`` seconds); one tick
    per frame and ten more to flush."""
    for speaker in uplinks:
        mixer.add_speaker(speaker)
    count = max(len(packets) for packets in uplinks.values())
    arrivals = sorted(
        (n * FRAME_SECONDS + (jitter(speaker, n) if jitter else 0.0), speaker, n, packet)
        for speaker, packets in uplinks.items()
        for n, packet in enumerate(packets)
    )
    results, index = [], 0
    for tick in range(count + 10):
        now = tick * FRAME_SECONDS + 0.001
        while index < len(arrivals) and arrivals[index][0] <= now:
            arrival, speaker, sequence, packet = arrivals[index]
            mixer.push(speaker, sequence, packet, arrival)
            index += 1
        results.append(mixer.tick(now))
    return results


def test_a_stereo_room_keeps_left_and_right_speakers_on_their_sides():
    """A left-only and a right-only speaker: the listener hears each on its own side
    (correlation >= 0.95 per channel), and each speaker's mix-minus is only the other one."""
    frames = 150
    left_tone, right_tone = sine(440, frames), sine(660, frames)
    results = run_room(
        RoomMixer(opus=STEREO),
        {
            "left": encode(stereo(left_tone, None), STEREO),
            "right": encode(stereo(None, right_tone), STEREO),
        },
    )
    assert all(packet_is_stereo(result.shared_packet) for result in results)
    heard = decode([result.shared_packet for result in results], channels=2)
    assert best_lag_correlation(left_tone, heard[:, 0], max_lag=4_800) >= 0.95
    assert best_lag_correlation(right_tone, heard[:, 1], max_lag=4_800) >= 0.95
    left_440, right_440 = sides(heard, 440)
    assert right_440 < 0.01 * left_440

    own = decode([r.mix_minus.get("left", r.shared_packet) for r in results], channels=2)
    assert sides(own, 440)[0] < 0.01 * left_440  # the left speaker does not hear themself
    assert sides(own, 660)[1] > 7000  # but does hear the right one
    assert results[-20].talking == {"left", "right"}
    assert results[-20].levels["left"] > -20


def test_a_mono_speaker_in_a_stereo_room_is_heard_on_both_sides():
    """A mono uplink (an older client, space_client) in a stereo room plays centred."""
    results = run_room(RoomMixer(opus=STEREO), {"mono": encode(sine(550, 100), MUSIC)})
    heard = decode([result.shared_packet for result in results], channels=2)
    left, right = sides(heard, 550)
    assert left > 7000 and abs(left - right) < 0.02 * left


def through_jitter(music: np.ndarray) -> tuple[np.ndarray, RoomMixer]:
    """What a listener of a stereo room hears of ``music`` sent with up to 30 ms of seeded
    send jitter (the playout time-stretches to follow it)."""
    delays = np.random.default_rng(16).uniform(0, 0.030, len(music) // FRAME_SAMPLES)
    mixer = RoomMixer(opus=STEREO)
    results = run_room(mixer, {"a": encode(music, STEREO)}, jitter=lambda _, n: delays[n])
    return decode([result.shared_packet for result in results], channels=2), mixer


def test_time_stretching_keeps_two_tones_in_phase_on_their_sides():
    """440 Hz left, 660 Hz right, through jitter: the playout removes whole periods common
    to both sides, so each channel stays >= 0.95 correlated with its source over the whole
    stream (a cut in one channel's period only would shift the other's phase)."""
    music = stereo(sine(440, 250), sine(660, 250, amplitude=4000))
    heard, mixer = through_jitter(music)
    assert mixer.stats().accelerated_samples > 0
    assert best_lag_correlation(music[:, 0], heard[:, 0], max_lag=9_600) >= 0.95
    assert best_lag_correlation(music[:, 1], heard[:, 1], max_lag=9_600) >= 0.95
    assert amplitude_at(heard[SETTLED:, 0], 660) < 0.01 * amplitude_at(heard[SETTLED:, 1], 660)


def test_a_tone_on_one_side_licenses_no_cut_through_a_chord_on_the_other():
    """A chord left and a tone right: at the tone's period the chord is not periodic, so no
    cut is made there, and the chord keeps >= 0.95 through the jitter."""
    music = stereo(chord(250), sine(660, 250, amplitude=4000))
    heard, _ = through_jitter(music)
    assert best_lag_correlation(music[:, 0], heard[:, 0], max_lag=9_600) >= 0.95
    assert best_lag_correlation(music[:, 1], heard[:, 1], max_lag=9_600) >= 0.95


def test_switching_a_playing_room_between_mono_and_stereo():
    """music -> music_stereo -> music while a stereo speaker talks: packets follow the mode
    at the next tick, the room keeps playing, and stereo brings the sides back."""
    mixer = RoomMixer(opus=MUSIC)
    mixer.add_speaker("a")
    encoder = OpusEncoder(STEREO)
    frames = split_frames(stereo(sine(440, 150), None))
    shared = []
    for n, frame in enumerate(frames):
        if n == 50:
            mixer.set_opus(STEREO)
        if n == 100:
            mixer.set_opus(MUSIC)
        mixer.push("a", n, encoder.encode(frame), n * FRAME_SECONDS)
        shared.append(mixer.tick(n * FRAME_SECONDS).shared_packet)
    assert [packet_is_stereo(p) for p in shared] == [False] * 50 + [True] * 50 + [False] * 50
    heard = decode(shared, channels=2)
    stereo_part = heard[70 * FRAME_SAMPLES : 100 * FRAME_SAMPLES]
    assert amplitude_at(stereo_part[:, 1], 440) < 0.01 * amplitude_at(stereo_part[:, 0], 440)
    mono_part = heard[20 * FRAME_SAMPLES : 50 * FRAME_SAMPLES]
    assert abs(amplitude_at(mono_part[:, 1], 440) - amplitude_at(mono_part[:, 0], 440)) < 100
    levels = [rms(frame) for frame in split_frames(heard[10 * FRAME_SAMPLES :, 0])]
    assert sum(level < 1000 for level in levels[:130]) <= 2  # at most a frame at each switch
    assert mixer.stats().settings_changes == 2


def record_segment(path, mode: str, signal: np.ndarray) -> None:
    """One recorded segment of a room in ``mode`` with one speaker sending ``signal``."""
    from spaces.audio.recorder import MixRecorder

    settings = AUDIO_MODES[mode]
    mixer = RoomMixer(opus=settings)
    recorder = MixRecorder(path, channels=settings.channels)
    mixer.mix_observers.append(recorder.on_mix)
    run_room(mixer, {"a": encode(signal, settings)})
    recorder.close()


def player_decode(path) -> np.ndarray:
    """What a standard player (FFmpeg through PyAV) plays of a file: (samples, channels)."""
    import av

    with av.open(str(path)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.concatenate(frames, axis=1).T  # planar (channels, n) blocks


def test_a_stereo_room_is_recorded_and_replayed_in_stereo(tmp_path):
    """A speech segment, then a music_stereo one with a left-only tone: the joined replay has
    a stereo header, the speech plays on both sides and the tone on the left only."""
    import av

    from spaces.audio.recorder import opus_head
    from spaces.audio.replay import join_segments

    record_segment(tmp_path / "1.ogg", "speech", sine(300, 100))
    record_segment(tmp_path / "2.ogg", "music_stereo", stereo(sine(440, 100), None))
    with av.open(str(tmp_path / "2.ogg")) as container:
        assert container.streams.audio[0].codec_context.extradata == opus_head(2)

    output = tmp_path / "replay.ogg"
    join_segments([tmp_path / "1.ogg", tmp_path / "2.ogg"], output)
    with av.open(str(output)) as container:
        assert container.streams.audio[0].codec_context.extradata == opus_head(2)
    played = player_decode(output)
    assert played.shape[1] == 2
    half = len(played) // 2
    speech, music = played[FRAME_SAMPLES * 10 : half - FRAME_SAMPLES * 10], played[half + SETTLED :]
    left_300 = amplitude_at(speech[:, 0], 300)
    assert left_300 > 0.5 * 8000 / 32768  # full scale is 1.0 in what players decode
    assert abs(left_300 - amplitude_at(speech[:, 1], 300)) < 0.02 * left_300
    assert amplitude_at(music[:, 1], 440) < 0.01 * amplitude_at(music[:, 0], 440)
    assert amplitude_at(music[:, 0], 440) > 0.5 * 8000 / 32768


def test_a_replay_of_mono_packets_keeps_a_mono_header(tmp_path):
    """Only a replay with stereo packets gets a stereo header: mono ones stay as they were."""
    import av

    from spaces.audio.recorder import OPUS_HEAD
    from spaces.audio.replay import join_segments

    record_segment(tmp_path / "1.ogg", "music", sine(300, 60))
    join_segments([tmp_path / "1.ogg"], tmp_path / "replay.ogg")
    with av.open(str(tmp_path / "replay.ogg")) as container:
        assert container.streams.audio[0].codec_context.extradata == OPUS_HEAD
