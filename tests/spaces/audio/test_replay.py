from pathlib import Path

import av
import numpy as np
import pytest

from spaces.audio.recorder import OPUS_HEAD
from spaces.audio.replay import join_in_child, join_segments, segment_is_closed

from .signals import dominant_frequency, magnitude_at
from .test_recorder import RecordedRoom, decode_file, demux_packets, silence, tone


def record(path: Path, signals: dict[str, np.ndarray]) -> RecordedRoom:
    """One segment: a fresh mixer (as a new owner has) recording ``signals``, then closed."""
    room = RecordedRoom(path)
    room.add(*signals)
    room.play(signals)
    room.recorder.close()
    return room


def test_segments_join_into_one_file_of_their_packets_without_reencoding(tmp_path):
    """Two owners' segments → one Ogg file holding their packets as they are, pts continuing."""
    first = record(tmp_path / "1.ogg", {"a": tone(440, 1.0)})
    second = record(tmp_path / "2.ogg", {"b": tone(440, 1.0)})
    output = tmp_path / "replay.ogg"

    joined = join_segments([tmp_path / "1.ogg", tmp_path / "2.ogg"], output)

    recorded = first.shared_packets + second.shared_packets
    packets = [bytes(packet) for packet in demux_packets(output)]
    lead = round(joined.trimmed_start / 0.02)
    assert packets == recorded[lead : lead + len(packets)]
    assert [packet.pts for packet in demux_packets(output)] == [
        i * 960 for i in range(len(packets))
    ]
    assert joined.packets == len(packets)
    with av.open(str(output)) as container:
        assert container.streams.audio[0].codec_context.extradata == OPUS_HEAD
    audio = decode_file(output)
    assert len(audio) / 48_000 == pytest.approx(joined.duration, abs=0.001)
    assert joined.duration == pytest.approx(2.0, abs=0.1)
    assert dominant_frequency(audio) == pytest.approx(440, abs=5)
    assert (joined.segments_read, joined.segments_unreadable) == (2, 0)


def test_timelines_move_into_the_joined_files_time(tmp_path):
    """A talks in the first segment, B in the second: B's turn starts where the first ends."""
    record(tmp_path / "1.ogg", {"a": np.concatenate([tone(300, 1.0), silence(0.4)])})
    record(tmp_path / "2.ogg", {"b": tone(500, 1.0), "a": silence(1.0)})

    joined = join_segments([tmp_path / "1.ogg", tmp_path / "2.ogg"], tmp_path / "replay.ogg")

    assert [entry["speaker_id"] for entry in joined.timeline] == ["a", "b"]
    a, b = joined.timeline
    assert a["start"] == pytest.approx(0.0, abs=0.05)
    assert b["start"] == pytest.approx(1.4, abs=0.25)
    assert b["end"] == pytest.approx(joined.duration, abs=0.05)
    assert all(0 <= e["start"] < e["end"] <= joined.duration + 0.01 for e in joined.timeline)


def test_dead_air_at_the_ends_is_cut_and_silence_between_words_kept(tmp_path):
    """1 s silence, 0.5 s tone, 1 s silence, 0.5 s tone, 1 s silence → 2 s of replay."""
    signal = np.concatenate([silence(1), tone(440, 0.5), silence(1), tone(440, 0.5), silence(1)])
    record(tmp_path / "1.ogg", {"a": signal})

    joined = join_segments([tmp_path / "1.ogg"], tmp_path / "replay.ogg")

    assert joined.duration == pytest.approx(2.0, abs=0.1)
    assert joined.trimmed_start == pytest.approx(1.0, abs=0.1)
    assert joined.trimmed_end == pytest.approx(1.0, abs=0.1)
    assert joined.timeline[0]["start"] == pytest.approx(0.0, abs=0.05)
    # The waveform shows the gap: loud at both ends, quiet in the middle.
    wave = joined.waveform
    assert max(wave[: len(wave) // 5]) > 50 and max(wave[-len(wave) // 5 :]) > 50
    assert max(wave[len(wave) * 2 // 5 : len(wave) * 3 // 5]) < 5


def test_a_torn_segment_contributes_its_complete_pages(tmp_path):
    """A segment cut mid-page (its writer killed) gives its complete pages; junk is skipped."""
    record(tmp_path / "1.ogg", {"a": tone(440, 2.0)})
    whole = (tmp_path / "1.ogg").read_bytes()
    (tmp_path / "1.ogg").write_bytes(whole[: len(whole) * 3 // 4])
    (tmp_path / "2.ogg").write_bytes(b"not an ogg file")
    record(tmp_path / "3.ogg", {"a": tone(660, 1.0)})

    joined = join_segments([tmp_path / n for n in ("1.ogg", "2.ogg", "3.ogg")], tmp_path / "r.ogg")

    audio = decode_file(tmp_path / "r.ogg")
    # Pages close every 0.5 s: the cut page and the one after the cut are lost, no more.
    assert 1.9 <= joined.duration <= 2.6
    assert (joined.segments_read, joined.segments_unreadable) == (2, 1)
    assert magnitude_at(audio, 440) > 0.5 and magnitude_at(audio, 660) > 0.3


def test_segment_is_closed_only_after_its_recorder_closed_it(tmp_path):
    """A flushed segment is still open (its writer may add to it); close() marks it closed."""
    room = RecordedRoom(tmp_path / "1.ogg")
    room.add("a")
    room.play({"a": tone(440, 0.5)})
    assert room.recorder.flush()
    assert not segment_is_closed(tmp_path / "1.ogg")
    room.recorder.close()
    assert segment_is_closed(tmp_path / "1.ogg")
    assert not segment_is_closed(tmp_path / "missing.ogg")


def test_nothing_recorded_writes_nothing(tmp_path):
    """No packets at all: an empty result and no file."""
    joined = join_segments([], tmp_path / "replay.ogg")
    assert (joined.packets, joined.duration, joined.timeline) == (0, 0.0, [])
    assert not (tmp_path / "replay.ogg").exists()


def test_join_in_a_child_process_gives_the_same_result(tmp_path):
    """The finaliser's child process returns what join_segments returns in process."""
    record(tmp_path / "1.ogg", {"a": tone(440, 1.0)})
    in_process = join_segments([tmp_path / "1.ogg"], tmp_path / "a.ogg")
    in_child = join_in_child(
        [tmp_path / "1.ogg"], tmp_path / "b.ogg", timeout=60, memory_bytes=1536 * 1024 * 1024
    )
    assert in_child == in_process
    packets = [[bytes(p) for p in demux_packets(tmp_path / name)] for name in ("a.ogg", "b.ogg")]
    assert packets[0] == packets[1]
