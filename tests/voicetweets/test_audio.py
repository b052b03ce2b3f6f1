"""The voice-tweet audio pipeline: what it accepts, what it refuses, and what it writes."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from tests.voicetweets import audiofiles
from tests.voicetweets.audiofiles import SECOND_STREAM_FILES, assert_plays_a_440_hz_tone_for
from voicetweets import audio
from voicetweets.audio import AudioRejected, RejectionReason

ACCEPTED_CONTAINERS = ["wav", "flac", "mp3", "ogg", "opus", "webm", "m4a", "aac"]


def rejection(source: Path | io.BytesIO, **options) -> AudioRejected:
    with pytest.raises(AudioRejected) as caught:
        audio.process_upload(source, output_dir=Path("/nonexistent-never-written"), **options)
    return caught.value


# --- Accepted uploads ----------------------------------------------------------------------


@pytest.mark.parametrize("container", ACCEPTED_CONTAINERS)
def test_ten_seconds_in_every_accepted_container_becomes_one_playable_voice_tweet(
    tmp_path, container
):
    """A 10 s stereo upload comes out as one 48 kHz mono AAC .m4a with its true length."""
    source = audiofiles.write_audio(
        tmp_path / f"upload.{container}", audiofiles.speech_like(10.0), channels=2
    )

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    assert not result.is_thread
    (part,) = result.parts
    assert part.duration_seconds == pytest.approx(10.0, abs=0.05)
    assert result.duration_seconds == part.duration_seconds
    assert len(part.waveform) == audio.WAVEFORM_BUCKETS
    assert all(0.0 <= value <= 1.0 for value in part.waveform)
    assert max(part.waveform) > 0.1
    assert result.mime_type == "audio/mp4"
    with av.open(str(part.path)) as output:
        (stream,) = output.streams.audio
        assert output.format.name.startswith("mov,mp4,m4a")
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.sample_rate == 48_000
        assert stream.codec_context.layout.nb_channels == 1
    decoded = audio.decode_mono(part.path)
    # AAC adds up to 2048 samples of priming/padding the container does not fully trim.
    assert decoded.size / 48_000 == pytest.approx(10.0, abs=0.05)


def test_output_keeps_the_signal(tmp_path):
    """A 1 kHz tone comes out as a 1 kHz tone (normalised, not distorted)."""
    source = audiofiles.write_audio(tmp_path / "tone.flac", audiofiles.sine(3.0, frequency=1000))

    (part,) = audio.process_upload(source, output_dir=tmp_path / "out").parts

    decoded = audio.decode_mono(part.path)[4800:-4800]
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(decoded.size)))
    assert np.fft.rfftfreq(decoded.size, 1 / 48_000)[spectrum.argmax()] == pytest.approx(
        1000, abs=5
    )


def test_output_starts_with_the_index_so_browsers_can_seek_with_range_requests(tmp_path):
    """The moov box precedes mdat (faststart): playback and seeking need no full download."""
    source = audiofiles.write_audio(tmp_path / "a.wav", audiofiles.speech_like(5.0))

    (part,) = audio.process_upload(source, output_dir=tmp_path / "out").parts

    data = part.path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_file_object_source_and_output_naming(tmp_path):
    """A seekable file object works as well as a path; parts are named <stem>-<n>.m4a."""
    source = audiofiles.write_audio(tmp_path / "a.ogg", audiofiles.speech_like(3.0))

    result = audio.process_upload(
        io.BytesIO(source.read_bytes()), output_dir=tmp_path / "out", output_stem="tweet-7"
    )

    assert [part.path.name for part in result.parts] == ["tweet-7-1.m4a"]
    assert result.source_format == "ogg"
    assert result.source_codec == "opus"


def test_exactly_140_seconds_is_accepted(tmp_path):
    """The limit itself is allowed."""
    source = audiofiles.write_audio(
        tmp_path / "a.flac", audiofiles.sine(140.0, rate=8000), rate=8000
    )

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    (part,) = result.parts
    assert part.duration_seconds == pytest.approx(140.0, abs=0.05)
    assert part.duration_seconds <= audio.MAX_SECONDS


def test_an_overrun_within_the_grace_period_is_cut_to_the_limit(tmp_path):
    """140.3 s (a stop button pressed late) is kept as exactly 140 s."""
    source = audiofiles.write_audio(
        tmp_path / "a.wav", audiofiles.sine(140.3, rate=8000), rate=8000
    )

    analysis = audio.analyse_upload(source)

    assert analysis.duration_seconds == 140.0


# --- Length rules and threads --------------------------------------------------------------


def test_141_seconds_is_rejected_as_too_long(tmp_path):
    """Without "post as thread" a recording over 140 s is refused, saying so."""
    source = audiofiles.write_audio(
        tmp_path / "a.flac", audiofiles.sine(141.0, rate=8000), rate=8000
    )

    refused = rejection(source)

    assert refused.reason == RejectionReason.TOO_LONG
    assert "longer than 140 s" in refused.message
    assert "thread" in refused.message


def test_a_header_that_claims_10_s_cannot_hide_200_s_of_audio(tmp_path):
    """The length is measured by decoding, not read from the container."""
    source = audiofiles.write_matroska_with_lying_duration(
        tmp_path / "liar.mkv", true_seconds=200, claimed_seconds=10
    )
    with av.open(str(source)) as container:
        assert container.duration / av.time_base == pytest.approx(10.0)

    assert rejection(source).reason == RejectionReason.TOO_LONG
    measured = audio.analyse_upload(source, allow_thread=True)
    assert measured.duration_seconds == pytest.approx(200.0, abs=0.01)


def test_300_seconds_as_a_thread_becomes_three_balanced_parts(tmp_path):
    """Balanced split: 3 x 100 s, consecutive, each playable and with its own waveform."""
    signal = audiofiles.speech_like(300.0, rate=16_000)
    source = audiofiles.write_audio(tmp_path / "long.flac", signal, rate=16_000)

    result = audio.process_upload(source, output_dir=tmp_path / "out", allow_thread=True)

    assert result.is_thread
    assert [part.index for part in result.parts] == [0, 1, 2]
    assert [part.duration_seconds for part in result.parts] == [100.0, 100.0, 100.0]
    for part in result.parts:
        assert part.path.name == f"voicetweet-{part.index + 1}.m4a"
        assert audio.decode_mono(part.path).size / 48_000 == pytest.approx(100.0, abs=0.05)
        assert len(part.waveform) == audio.WAVEFORM_BUCKETS
        assert part.loudness_after_lufs == pytest.approx(audio.TARGET_LOUDNESS_LUFS, abs=1.0)


def test_300_seconds_without_thread_is_rejected(tmp_path):
    """A long recording is not split unless the member asked for a thread."""
    source = audiofiles.write_audio(
        tmp_path / "long.wav", audiofiles.sine(300.0, rate=8000), rate=8000
    )

    assert rejection(source).reason == RejectionReason.TOO_LONG


def test_a_thread_longer_than_the_thread_maximum_is_rejected(tmp_path):
    """ "Post as thread" has its own ceiling, so nobody uploads hours."""
    source = audiofiles.write_audio(
        tmp_path / "long.flac", audiofiles.sine(40.0, rate=8000), rate=8000
    )

    refused = rejection(source, allow_thread=True, max_thread_seconds=30.0, max_seconds=10.0)

    assert refused.reason == RejectionReason.THREAD_TOO_LONG
    assert "0.5 minutes" in refused.message


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1.0, [1.0]),
        (140.0, [140.0]),
        (140.5, [70.25, 70.25]),
        (300.0, [100.0, 100.0, 100.0]),
        (900.0, [900 / 7] * 7),
    ],
)
def test_plan_parts_uses_the_fewest_balanced_parts(seconds, expected):
    """Each part is at most 140 s; parts are consecutive and cover the whole recording."""
    total = round(seconds * audio.SAMPLE_RATE)

    parts = audio.plan_parts(total)

    assert [part.duration_seconds for part in parts] == pytest.approx(expected, abs=1e-4)
    assert parts[0].start_sample == 0
    assert parts[-1].end_sample == total
    assert all(a.end_sample == b.start_sample for a, b in itertools.pairwise(parts))
    assert all(part.duration_seconds <= audio.MAX_SECONDS for part in parts)


def test_too_short_is_rejected(tmp_path):
    """Less than a second is not a voice tweet."""
    source = audiofiles.write_audio(tmp_path / "blip.wav", audiofiles.sine(0.5))

    assert rejection(source).reason == RejectionReason.TOO_SHORT


# --- Loudness ------------------------------------------------------------------------------


def test_loudness_meter_matches_bs1770_reference_tone():
    """A 997 Hz tone at -20 dBFS peak reads -20.0 LUFS (dual mono; -23.0 as one channel)."""
    tone = audiofiles.sine(10.0, frequency=997, amplitude=0.1)

    assert audio.measure_loudness(tone) == pytest.approx(-20.0, abs=0.05)


def test_quiet_recording_is_normalised_to_the_target(tmp_path):
    """A whisper at about -40 LUFS comes out near -16 LUFS."""
    quiet = audiofiles.speech_like(8.0, amplitude=0.02)
    source = audiofiles.write_audio(tmp_path / "quiet.webm", quiet)

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    assert result.loudness_before_lufs < -35
    assert result.loudness_after_lufs == pytest.approx(audio.TARGET_LOUDNESS_LUFS, abs=0.01)
    measured = audio.measure_loudness(audio.decode_mono(result.parts[0].path))
    assert measured == pytest.approx(audio.TARGET_LOUDNESS_LUFS, abs=1.0)


def test_loud_recording_is_turned_down(tmp_path):
    """A near full-scale tone is brought down to the target too."""
    source = audiofiles.write_audio(tmp_path / "loud.wav", audiofiles.sine(5.0, amplitude=0.9))

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    assert result.gain_db < -5
    measured = audio.measure_loudness(audio.decode_mono(result.parts[0].path))
    assert measured == pytest.approx(audio.TARGET_LOUDNESS_LUFS, abs=1.0)


def test_gain_never_pushes_peaks_over_the_ceiling(tmp_path):
    """Quiet speech with a loud click: the click limits the gain instead of clipping."""
    signal = audiofiles.speech_like(6.0, amplitude=0.01)
    signal[48_000] = 0.5
    source = audiofiles.write_audio(tmp_path / "click.flac", signal)

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    expected_gain = audio.PEAK_CEILING_DBFS - 20 * np.log10(0.5)
    assert result.gain_db == pytest.approx(expected_gain, abs=0.05)
    assert result.loudness_after_lufs < audio.TARGET_LOUDNESS_LUFS
    assert np.abs(audio.decode_mono(result.parts[0].path)).max() < 1.0


@pytest.mark.parametrize("container", ["wav", "ogg"])
def test_silence_is_rejected(tmp_path, container):
    """Digital silence (and near silence) is refused as silent."""
    source = audiofiles.write_audio(tmp_path / f"quiet.{container}", audiofiles.silence(5.0))

    refused = rejection(source)

    assert refused.reason == RejectionReason.SILENT
    assert "silent" in refused.message


def test_hiss_far_below_speech_level_is_rejected_as_silent(tmp_path):
    """A recording of nothing but -75 dBFS hiss counts as silent."""
    source = audiofiles.write_audio(
        tmp_path / "hiss.flac", audiofiles.noise(5.0, amplitude=10 ** (-75 / 20))
    )

    assert rejection(source).reason == RejectionReason.SILENT


# --- Hostile and broken uploads ------------------------------------------------------------


def test_empty_file_is_rejected(tmp_path):
    """A zero-byte upload is refused as empty."""
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")

    assert rejection(empty).reason == RejectionReason.EMPTY


def test_png_renamed_m4a_is_rejected_as_not_audio(tmp_path):
    """Nothing is trusted from the file name."""
    fake = tmp_path / "picture.m4a"
    fake.write_bytes(audiofiles.png_bytes())

    refused = rejection(fake)

    assert refused.reason == RejectionReason.NOT_AUDIO
    assert "M4A" in refused.message


@pytest.mark.parametrize("playlist", ["ffconcat", "hls"])
def test_playlists_pointing_at_real_files_are_rejected(tmp_path, playlist):
    """An ffconcat or HLS playlist named .mp3 never makes FFmpeg read the files it lists."""
    real = audiofiles.write_audio(tmp_path / "real.wav", audiofiles.sine(2.0))
    make = audiofiles.ffconcat_playlist if playlist == "ffconcat" else audiofiles.hls_playlist
    fake = tmp_path / "playlist.mp3"
    fake.write_bytes(make(real, real))

    assert rejection(fake).reason == RejectionReason.NOT_AUDIO


@pytest.mark.parametrize("demuxer", ["hls", "concat"])
def test_nested_opens_fail_even_if_a_playlist_demuxer_were_chosen(tmp_path, demuxer):
    """Second layer: with our open options, playlist demuxers cannot reach the listed files.

    Sniffing already keeps these demuxers away; this pins that the io_open hook (hls) and the
    empty protocol whitelist (concat opens its nested input without the hook) also hold.
    """
    real = audiofiles.write_audio(tmp_path / "real.wav", audiofiles.sine(2.0))
    make = audiofiles.hls_playlist if demuxer == "hls" else audiofiles.ffconcat_playlist
    options = audio._input_options(demuxer)
    if demuxer == "concat":
        options["safe"] = "0"  # allow absolute paths, the worst case
    with pytest.raises((PermissionError, av.error.FFmpegError)):
        av.open(
            io.BytesIO(make(real)),
            format=demuxer,
            options=options,
            io_open=audio._refuse_nested_open,
        )


def test_id3_tag_in_front_of_a_playlist_is_not_audio_either(tmp_path):
    """An ID3 header cannot smuggle text past the sniffer into a useful demuxer."""
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 16
    fake = tmp_path / "tagged.mp3"
    fake.write_bytes(tag + audiofiles.hls_playlist(Path("/etc/hostname")))

    assert rejection(fake).reason == RejectionReason.UNDECODABLE


def test_video_only_file_is_rejected(tmp_path):
    """An MP4 with only a video track has nothing to play."""
    source = audiofiles.write_video_only(tmp_path / "clip.mp4")

    refused = rejection(source)

    assert refused.reason == RejectionReason.NO_AUDIO_STREAM
    assert "no audio track" in refused.message


@pytest.mark.parametrize("case", SECOND_STREAM_FILES)
def test_the_audio_stream_is_used_and_a_picture_or_video_stream_ignored(tmp_path, case):
    """Cover art or a video track beside the audio, before or after it, changes nothing: the
    one audio stream becomes the voice tweet, with its true length and its sound."""
    source = SECOND_STREAM_FILES[case](tmp_path)
    with av.open(str(source)) as container:
        assert len(container.streams) == 2 and len(container.streams.audio) == 1
        if "first" in case:
            assert container.streams[0].type == "video"

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    (part,) = result.parts
    assert part.duration_seconds == pytest.approx(6.0, abs=0.05)
    assert max(part.waveform) > 0.1
    assert_plays_a_440_hz_tone_for(part.path, 6.0)


def test_the_first_of_several_audio_tracks_is_used(tmp_path):
    """Two audio tracks: the first (440 Hz) becomes the voice tweet, the second (1 kHz) is
    ignored like cover art."""
    source = audiofiles.write_two_audio_streams(tmp_path / "two.mkv", seconds=3.0)

    result = audio.process_upload(source, output_dir=tmp_path / "out")

    (part,) = result.parts
    audiofiles.assert_plays_a_440_hz_tone_for(part.path, 3.0)


@pytest.mark.parametrize(
    ("container", "keep"),
    [("m4a", 0.5), ("flac", 0.0), ("wav", 0.0), ("webm", 0.0), ("ogg", 0.0)],
)
def test_truncated_files_are_rejected(tmp_path, container, keep):
    """An upload cut short (index missing, or just the header) is refused, never a crash."""
    whole = audiofiles.write_audio(tmp_path / f"a.{container}", audiofiles.speech_like(3.0))
    data = whole.read_bytes()
    truncated = tmp_path / f"cut.{container}"
    truncated.write_bytes(data[: int(len(data) * keep)] if keep else data[:20])

    assert rejection(truncated).reason in {RejectionReason.UNDECODABLE, RejectionReason.TOO_SHORT}


@pytest.mark.parametrize("magic", [b"OggS", b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"\xff\xfb"])
def test_random_bytes_behind_valid_magic_are_rejected(magic):
    """Garbage that only starts like audio fails to decode and is reported as such."""
    garbage = np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes()

    refused = rejection(io.BytesIO(magic + garbage))

    assert refused.reason in {RejectionReason.UNDECODABLE, RejectionReason.TOO_SHORT}


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"OggS\x00\x02", "ogg"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86", "matroska,webm"),
        (b"\x00\x00\x00\x1cftypM4A ", "mov,mp4,m4a,3gp,3g2,mj2"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64", "mp3"),
        (b"\xff\xf1\x4c\x40", "aac"),
        (b"#EXTM3U\n", None),
        (b"ffconcat version 1.0\n", None),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"", None),
    ],
)
def test_sniff_container_format(head, expected):
    """The demuxer is chosen from magic bytes, and only among audio formats we accept."""
    assert audio.sniff_container_format(head) == expected


def test_id3_tag_in_front_of_adts_selects_the_aac_demuxer():
    """What follows an ID3 tag decides the demuxer; the tag size is syncsafe."""
    assert audio.sniff_container_format(b"ID3", next_after_id3=b"\xff\xf1\x4c\x40") == "aac"
    assert audio.id3v2_tag_size(b"ID3\x04\x00\x00\x00\x00\x01\x00") == 10 + 128


def test_a_failed_render_leaves_no_files_behind(tmp_path, monkeypatch):
    """If encoding fails halfway (or the task is killed), partial outputs are removed."""
    source = audiofiles.write_audio(tmp_path / "a.wav", audiofiles.speech_like(3.0))

    def explode(self, samples):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audio._PartWriter, "write", explode)
    with pytest.raises(RuntimeError):
        audio.process_upload(source, output_dir=tmp_path / "out")

    assert list((tmp_path / "out").iterdir()) == []


def test_time_limit_rejects_instead_of_running_on(tmp_path):
    """A zero time budget stops at the first packet with a timed_out rejection."""
    source = audiofiles.write_audio(tmp_path / "a.wav", audiofiles.speech_like(3.0))

    refused = rejection(source, time_limit_seconds=0.0)

    assert refused.reason == RejectionReason.TIMED_OUT
