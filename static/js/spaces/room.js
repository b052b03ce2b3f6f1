// The room's state, kept from the snapshot and the events of /ws/spaces/<id>/ (docs/protocol.md).
// No DOM here: view.js renders it, and the audio step can read the same state.

// Listeners named in the audience list; beyond that the page shows "and N more".
const LISTED_LISTENERS = 100;

export class Room {
  constructor(userId) {
    this.userId = userId;
    this.space = null;
    this.participants = new Map(); // user_id → participant
    this.reactions = [];
    this.levels = {}; // user_id (string) → {level, talking}, from the last `levels` event
  }

  // How many listeners are not listed by name (big rooms list a sample; counts are exact).
  get unlistedListeners() {
    let listed = 0;
    for (const p of this.participants.values()) if (p.role === "listener") listed += 1;
    return Math.max(0, (this.space ? this.space.listener_count : 0) - listed);
  }

  // A plain listener joined: list them while the sample is small.
  addListener(participant) {
    if (this.participants.has(participant.user_id)) return;
    let listed = 0;
    for (const p of this.participants.values()) if (p.role === "listener") listed += 1;
    if (listed < LISTED_LISTENERS) this.participants.set(participant.user_id, participant);
  }

  get me() {
    return this.participants.get(this.userId) || null;
  }

  get isModerator() {
    const me = this.me;
    return !!me && (me.role === "host" || me.role === "cohost");
  }

  // Apply one server event; returns a short human line for the activity log, or null.
  apply(event) {
    const p = this.participants.get(event.user_id);
    const name = p ? p.name : "Someone";
    switch (event.type) {
      case "snapshot":
        this.space = event.space;
        this.reactions = event.reactions;
        this.participants = new Map(event.participants.map((x) => [x.user_id, x]));
        return null;
      case "participant.joined":
        this.participants.set(event.participant.user_id, event.participant);
        return `${event.participant.name} joined`;
      case "participant.left":
        this.participants.delete(event.user_id);
        return `${name} left`;
      case "participant.removed":
        this.participants.delete(event.user_id);
        return `${name} was removed`;
      case "role.changed": {
        this.participants.set(event.user_id, event.participant);
        // The next audience digest recounts; until then the count follows the move, so a
        // listener who went on stage is not "1 more listening" any more.
        const wasListener = event.previous_role === "listener";
        const isListener = event.role === "listener";
        if (wasListener !== isListener) {
          this.space.listener_count = Math.max(0, this.space.listener_count + (isListener ? 1 : -1));
        }
        if (event.role === "host") this.space.host = { id: event.user_id, username: event.participant.username, name: event.participant.name };
        return `${event.participant.name} is now ${event.role}`;
      }
      case "hand.raised":
        // The hand may belong to a listener this page did not list: it is listed now.
        this.participants.set(event.user_id, event.participant);
        return `${event.participant.name} raised their hand`;
      case "audience.changed": {
        this.space.participant_count = event.participant_count;
        this.space.listener_count = event.listener_count;
        for (const userId of event.left) {
          const gone = this.participants.get(userId);
          if (gone && gone.role === "listener" && userId !== this.userId) this.participants.delete(userId);
        }
        for (const participant of event.joined) this.addListener(participant);
        return null;
      }
      case "hand.lowered":
        if (p) p.hand_raised = false;
        return null;
      case "speak.invited":
        if (p) p.invited_to_speak = true;
        return `${name} was invited to speak`;
      case "speak.declined":
        if (p) p.invited_to_speak = false;
        return `${name} declined to speak`;
      case "mute.changed":
        if (p) {
          p.is_muted = event.is_muted;
          p.muted_by_moderator = event.muted_by_moderator;
        }
        return null;
      case "pin.changed":
        this.space.pinned_voice_tweet_id = event.voice_tweet_id;
        return event.voice_tweet_id ? "A voice tweet was pinned" : "The pin was removed";
      case "audio_mode.changed":
        this.space.audio_mode = event.audio_mode;
        return {
          music: "Music mode: high-quality audio",
          music_stereo: "Music mode in stereo",
        }[event.audio_mode] || "Back to speech mode";
      case "recording.changed":
        this.space.is_recording = event.is_recording;
        return event.is_recording ? "Recording started" : "Recording stopped";
      case "levels":
        this.levels = event.speakers;
        return null;
      case "host.away":
        this.space.host_away = true;
        return "The host's connection dropped";
      case "host.back":
        this.space.host_away = false;
        return null;
      case "space.ended":
        this.space.state = "ended";
        this.space.replay_url = event.replay_url;
        return "The space has ended";
      default:
        return null;
    }
  }
}
