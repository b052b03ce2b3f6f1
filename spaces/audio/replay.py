"""Joins the segments of a space's recording into one replay file, without re-encoding.

A recording is one or more segment files written by :class:`~.recorder.MixRecorder`, one per
mixer that owned the room while it was recorded: a process that takes a room over (its owner
died, or the lease moved) starts a new segment. :func:`join_segments`:

* remuxes the segments' Opus packets, in order, into one Ogg Opus file; pts simply continue,
  so nothing is decoded and encoded again;
* reads each segment up to its last complete Ogg page, so the file of a process killed while
  recording contributes everything that reached the disk;
* cuts the dead air before the first sound and after the last: ticks in which nobody talked
  (the mixer sums only talking speakers, so those packets are silence). Silences in between
  stay: they are part of the conversation;
* measures the duration from the packets (20 ms each, minus the 312-sample pre-skip), a
  waveform, and moves each segment's speaker timeline into the joined file's time.

Each packet is decoded once, only to measure its level (trimming, waveform). The finaliser runs
this in a child process (``python -m spaces.audio.replay``, :func:`join_in_child`), so an hour
of decoding never competes with a mixer thread for the interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from .codec import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    CodecError,
    OpusDecoder,
    packet_is_stereo,
)
from .levels import METER_FLOOR_DBFS, SILENCE_DBFS, frame_level_dbfs, meter_from_dbfs
from .recorder import OPUS_PRE_SKIP, mux_packet, open_ogg_opus

logger = logging.getLogger(__name__)

# A 20 ms packet quieter than this (RMS) is dead air: the floor of the level meter.
SILENCE_FLOOR_DBFS = METER_FLOOR_DBFS
WAVEFORM_BUCKETS = 200
# Timeline segments of one speaker this close (seconds) become one, also across segment files.
MERGE_GAP = 0.5


class ReplayJoinError(RuntimeError):
    """The child process failed or took too long."""


@dataclass(frozen=True)
class JoinedReplay:
    packets: int  # Opus packets in the joined file
    duration: float  # seconds a player plays
    # Peak level of equal slices of the replay, 0..100 (the level meter's scale).
    waveform: list[int]
    # [{speaker_id, start, end}] in the joined file's seconds, ordered by start.
    timeline: list[dict]
    trimmed_start: float  # dead air cut before the first sound, seconds
    trimmed_end: float  # and after the last
    segments_read: int
    segments_unreadable: int


def timeline_path(segment: Path) -> Path:
    return segment.with_name(segment.name + ".timeline.json")


def segment_is_closed(segment: Path) -> bool:
    """Whether the segment's recorder closed it (else it is still written, or its writer died)."""
    try:
        document = json.loads(timeline_path(segment).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("closed") is True


def read_segment(path: Path) -> list[bytes] | None:
    """The segment's Opus packets up to its last complete page; None if it cannot be read."""
    packets: list[bytes] = []
    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if len(streams) != 1 or streams[0].codec_context.name != "opus":
                logger.warning("replay: %s is not an Opus recording; skipped", path)
                return None
            try:
                for packet in container.demux(streams[0]):
                    if packet.size:
                        packets.append(bytes(packet))
            except av.FFmpegError:
                # A file whose writer was killed ends in a torn page: keep what came before.
                logger.warning("replay: %s ends early (%d packets read)", path, len(packets))
    except (av.FFmpegError, OSError):
        logger.warning("replay: %s cannot be read; skipped", path, exc_info=True)
        return None
    return packets


def read_timeline(path: Path) -> list[dict]:
    """The segment's speaker timeline (missing or damaged: none)."""
    try:
        document = json.loads(timeline_path(path).read_text())
        segments = document["segments"]
        return [
            {"speaker_id": s["speaker_id"], "start": float(s["start"]), "end": float(s["end"])}
            for s in segments
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def packet_levels(packets: Sequence[bytes]) -> np.ndarray:
    """RMS level (dBFS) of each packet as a player hears it (one decoder for the sequence)."""
    decoder = OpusDecoder()
    levels = np.full(len(packets), SILENCE_DBFS)
    for index, payload in enumerate(packets):
        with contextlib.suppress(CodecError):  # a damaged packet counts as silence
            levels[index] = frame_level_dbfs(decoder.decode(payload))
    return levels


def waveform(levels: np.ndarray, buckets: int = WAVEFORM_BUCKETS) -> list[int]:
    if len(levels) == 0:
        return []
    meters = np.array([meter_from_dbfs(level) for level in levels])
    slices = np.array_split(meters, min(buckets, len(meters)))
    return [round(float(part.max()) * 100) for part in slices]


def merge_timeline(entries: list[dict], merge_gap: float = MERGE_GAP) -> list[dict]:
    """Ordered by start; a speaker's entries at most ``merge_gap`` apart become one."""
    merged: list[dict] = []
    last_of: dict = {}
    for entry in sorted(entries, key=lambda e: e["start"]):
        last = last_of.get(entry["speaker_id"])
        if last is not None and entry["start"] - last["end"] <= merge_gap:
            last["end"] = max(last["end"], entry["end"])
            continue
        entry = dict(entry)
        merged.append(entry)
        last_of[entry["speaker_id"]] = entry
    return merged


def join_segments(
    segments: Sequence[Path], output: Path, *, silence_floor_dbfs: float = SILENCE_FLOOR_DBFS
) -> JoinedReplay:
    """Join ``segments`` (in recording order) into ``output``; see the module docstring.

    ``output`` is written under a temporary name and renamed, so it is either whole or absent.
    With no packet at all, nothing is written.
    """
    packets: list[bytes] = []
    levels: list[np.ndarray] = []
    timeline: list[dict] = []
    unreadable = 0
    for path in segments:
        segment_packets = read_segment(Path(path))
        if segment_packets is None:
            unreadable += 1
            continue
        offset = len(packets) * FRAME_SECONDS
        length = len(segment_packets) * FRAME_SECONDS
        # A killed writer may have saved a timeline reaching past its last complete page.
        for entry in read_timeline(Path(path)):
            start, end = offset + entry["start"], offset + min(entry["end"], length)
            if end > start:
                timeline.append({**entry, "start": start, "end": end})
        packets.extend(segment_packets)
        # Each segment comes from its own mixer's encoder: decode it with a fresh decoder.
        levels.append(packet_levels(segment_packets))

    all_levels = np.concatenate(levels) if levels else np.zeros(0)
    loud = np.flatnonzero(all_levels >= silence_floor_dbfs)
    first, last = (int(loud[0]), int(loud[-1])) if len(loud) else (0, len(packets) - 1)
    kept = packets[first : last + 1]
    if not kept:
        return JoinedReplay(0, 0.0, [], [], 0.0, 0.0, len(segments) - unreadable, unreadable)

    start_seconds, kept_seconds = first * FRAME_SECONDS, len(kept) * FRAME_SECONDS
    shifted = []
    for entry in timeline:
        start = max(0.0, entry["start"] - start_seconds)
        end = min(kept_seconds, entry["end"] - start_seconds)
        if end > start:
            shifted.append({**entry, "start": round(start, 3), "end": round(end, 3)})

    temporary = output.with_name(output.name + ".part")
    # Stereo if any packet is (the space was in music_stereo mode for a while): its mono
    # packets then play centred, its stereo ones keep their sides.
    channels = 2 if any(packet_is_stereo(payload) for payload in kept) else 1
    container, stream = open_ogg_opus(
        temporary, page_seconds=1.0, flush_packets=False, channels=channels
    )
    try:
        for index, payload in enumerate(kept):
            mux_packet(container, stream, payload, index)
    finally:
        container.close()
    os.replace(temporary, output)

    return JoinedReplay(
        packets=len(kept),
        duration=(len(kept) * FRAME_SAMPLES - OPUS_PRE_SKIP) / SAMPLE_RATE,
        waveform=waveform(all_levels[first : last + 1]),
        timeline=merge_timeline(shifted),
        trimmed_start=round(start_seconds, 3),
        trimmed_end=round((len(packets) - 1 - last) * FRAME_SECONDS, 3),
        segments_read=len(segments) - unreadable,
        segments_unreadable=unreadable,
    )


def join_in_child(
    segments: Sequence[Path],
    output: Path,
    *,
    timeout: float,
    memory_bytes: int,
    heartbeat: Callable[[], bool] | None = None,
    heartbeat_seconds: float = 10.0,
) -> JoinedReplay:
    """:func:`join_segments` in a bounded child process (``memory_bytes`` of address space,
    CPU time), killed after ``timeout`` seconds.

    ``heartbeat`` renews the replay's lease while the child runs (voicetweets.children); when
    it returns False the child is killed and ``ChildAbandoned`` propagates.
    """
    from voicetweets import children

    args = ["--output", str(output), *(str(path) for path in segments)]
    try:
        result = children.run_child(
            "spaces.audio.replay",
            args,
            timeout=timeout,
            memory_bytes=memory_bytes,
            heartbeat=heartbeat,
            heartbeat_seconds=heartbeat_seconds,
        )
    except children.ChildTimedOut:
        raise ReplayJoinError(f"joining took longer than {timeout:g} s") from None
    if result.returncode != 0:
        raise ReplayJoinError(f"joining failed (exit {result.returncode}): {result.stderr_tail()}")
    return JoinedReplay(**json.loads(result.stdout))


def main(argv: list[str] | None = None) -> int:
    from voicetweets.children import enter_child

    parser = argparse.ArgumentParser(description="Join recording segments into one replay.")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("segments", type=Path, nargs="*")
    args = enter_child(parser, argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    joined = join_segments(args.segments, args.output)
    print(json.dumps(asdict(joined)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
