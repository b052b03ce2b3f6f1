"""The live path: speakers' frames in, each room's mix out, with the presence and
joins around it. Media (intake, mixer hand-off, lease), fan-out (writes to sockets), the
bus between processes, presence (heartbeats, listener batches, digests), join tickets
and the join gate. Nothing here waits on the database on the media path."""
