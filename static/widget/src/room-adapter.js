/**
 * The room interface the controller uses (see controller.js), over livekit-client: the agent
 * (and an avatar publishing on its behalf), its attributes and RPCs, transcription streams,
 * the avatar's video and the agent's audio, which stays silent until the visitor's click.
 */

const ATTR_PUBLISH_ON_BEHALF = 'lk.publish_on_behalf';
const ATTR_SEGMENT_ID = 'lk.segment_id';
const ATTR_FINAL = 'lk.transcription_final';
const ATTR_TRACK_ID = 'lk.transcribed_track_id';
const TOPIC_TRANSCRIPTION = 'lk.transcription';
const TOPIC_CHAT = 'lk.chat';

const MICROPHONE_OPTIONS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
};

/** livekit-client's failed connect, said in the room interface's terms (see connect). */
function connectError(lk, cause) {
  const { ConnectionError, ConnectionErrorReason } = lk;
  const refused =
    Boolean(ConnectionError) &&
    cause instanceof ConnectionError &&
    cause.reason === ConnectionErrorReason.NotAllowed;
  const message = (cause && cause.message) || String(cause);
  const error = new Error(message, { cause });
  error.name = 'RoomConnectError';
  error.refused = refused;
  error.status = (cause && typeof cause.status === 'number' && cause.status) || null;
  return error;
}

/**
 * The room interface over livekit-client. `lk` holds livekit-client's exports (Room,
 * RoomEvent, Track, ParticipantKind, DisconnectReason, ConnectionState, ConnectionError,
 * ConnectionErrorReason), passed in so unit
 * tests can drive this class with a test double of them.
 */
export class LiveKitRoom {
  /**
   * @param {object} lk livekit-client's exports
   * @param {{videoElement: HTMLVideoElement, audioContainer: HTMLElement}} elements where the
   *   avatar's video and the agent's audio are attached (inside the widget's shadow root)
   */
  constructor(lk, { videoElement, audioContainer }) {
    this.lk = lk;
    this.isAgent = (participant) => participant.kind === lk.ParticipantKind.AGENT;
    // Disconnect reasons that mean "the conversation's room is gone", not "the network broke".
    this.roomClosedReasons = new Set([
      lk.DisconnectReason.ROOM_DELETED,
      lk.DisconnectReason.ROOM_CLOSED,
      lk.DisconnectReason.PARTICIPANT_REMOVED,
    ]);
    this.videoElement = videoElement;
    this.audioContainer = audioContainer;
    this.listeners = new Map();
    this.audioTracks = new Set();
    this.audioAllowed = false;
    this.videoTrack = null;
    this.leaving = false;
    // preConnectBuffer also goes in the publish defaults: livekit-client 2.x reads it from
    // there (merged with the capture options) when it creates the microphone track.
    this.room = new lk.Room({
      adaptiveStream: true, // the avatar's video at the size it is shown
      audioCaptureDefaults: MICROPHONE_OPTIONS,
      publishDefaults: { preConnectBuffer: true },
    });
    this.bindEvents();
  }

  on(event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(listener);
  }

  emit(event, ...args) {
    for (const listener of this.listeners.get(event) || []) listener(...args);
  }

  // ---- connection -------------------------------------------------------------------------

  /**
   * Joins the room. Rejects with a `RoomConnectError` whose `refused` says whether the server
   * refused the token (livekit-client's ConnectionError NotAllowed: HTTP 401/403 from the
   * server's validate endpoint, i.e. keys that do not match the server, or no such room)
   * rather than could not be reached; `status` is the HTTP status when there was one.
   */
  async connect(url, token) {
    this.leaving = false;
    try {
      await this.room.connect(url, token, { autoSubscribe: true });
    } catch (error) {
      throw connectError(this.lk, error);
    }
    for (const participant of this.room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        if (publication.track) this.trackSubscribed(publication.track, participant);
      }
    }
    const agent = this.agent();
    if (agent) this.emit('agent-joined', agent.identity);
  }

  async disconnect() {
    this.leaving = true;
    this.detachAll();
    if (this.room.state !== this.lk.ConnectionState.Disconnected) await this.room.disconnect();
  }

  startAudio() {
    return this.room.startAudio();
  }

  get canPlaybackAudio() {
    return this.room.canPlaybackAudio;
  }

  /** From now on the agent's audio plays (it stays silent during the preview). */
  playRemoteAudio() {
    this.audioAllowed = true;
    for (const track of this.audioTracks) this.attachAudio(track);
  }

  async enableMicrophone() {
    await this.room.localParticipant.setMicrophoneEnabled(true, MICROPHONE_OPTIONS, {
      preConnectBuffer: true,
    });
  }

  async setMicrophoneMuted(muted) {
    await this.room.localParticipant.setMicrophoneEnabled(!muted);
  }

  // ---- the agent --------------------------------------------------------------------------

  /** The agent participant itself (not an avatar publishing on its behalf). */
  agent() {
    for (const participant of this.room.remoteParticipants.values()) {
      if (this.isAgent(participant) && !participant.attributes[ATTR_PUBLISH_ON_BEHALF]) {
        return participant;
      }
    }
    return null;
  }

  agentIdentity() {
    const agent = this.agent();
    return agent ? agent.identity : null;
  }

  agentAttributes() {
    const agent = this.agent();
    return agent ? { ...agent.attributes } : {};
  }

  performRpc(destinationIdentity, method, payload, responseTimeout) {
    return this.room.localParticipant.performRpc({
      destinationIdentity,
      method,
      payload,
      responseTimeout,
    });
  }

  /** What the visitor typed, on the topic LiveKit Agents reads as chat input. */
  async sendText(text) {
    await this.room.localParticipant.sendText(text, { topic: TOPIC_CHAT });
  }

  registerRpcMethod(method, handler) {
    this.room.registerRpcMethod(method, (data) => handler(data.payload, data.callerIdentity));
  }

  // ---- events -----------------------------------------------------------------------------

  bindEvents() {
    const room = this.room;
    const { RoomEvent, DisconnectReason } = this.lk;
    room.on(RoomEvent.ParticipantConnected, (participant) => {
      if (this.isAgent(participant) && this.agent() === participant) {
        this.emit('agent-joined', participant.identity);
      }
    });
    room.on(RoomEvent.ParticipantDisconnected, (participant) => {
      if (this.isAgent(participant) && !participant.attributes[ATTR_PUBLISH_ON_BEHALF]) {
        this.emit('agent-left', participant.identity);
      }
    });
    room.on(RoomEvent.ParticipantAttributesChanged, (_changed, participant) => {
      if (participant === this.agent()) this.emit('agent-attributes', { ...participant.attributes });
    });
    room.on(RoomEvent.TrackSubscribed, (track, _publication, participant) =>
      this.trackSubscribed(track, participant),
    );
    room.on(RoomEvent.TrackUnsubscribed, (track) => this.trackUnsubscribed(track));
    room.on(RoomEvent.AudioPlaybackStatusChanged, () =>
      this.emit('audio-playback', room.canPlaybackAudio),
    );
    room.on(RoomEvent.Reconnecting, () => this.emit('reconnecting'));
    room.on(RoomEvent.Reconnected, () => this.emit('reconnected'));
    room.on(RoomEvent.Disconnected, (reason) => {
      this.detachAll();
      let kind = 'connection';
      if (this.leaving || reason === DisconnectReason.CLIENT_INITIATED) kind = 'client';
      else if (this.roomClosedReasons.has(reason)) kind = 'room_closed';
      this.emit('disconnected', kind);
    });
    room.registerTextStreamHandler(TOPIC_TRANSCRIPTION, (reader, participantInfo) => {
      this.readTranscription(reader, participantInfo.identity);
    });
  }

  async readTranscription(reader, senderIdentity) {
    const info = reader.info;
    const attributes = info.attributes || {};
    const local = this.room.localParticipant;
    const trackId = attributes[ATTR_TRACK_ID];
    const fromVisitor =
      senderIdentity === local.identity || (trackId && local.trackPublications.has(trackId));
    const base = {
      streamId: info.id,
      segmentId: attributes[ATTR_SEGMENT_ID] || info.id,
      role: fromVisitor ? 'user' : 'agent',
    };
    try {
      for await (const delta of reader) {
        this.emit('transcription', { ...base, delta, done: false, final: false });
      }
    } catch {
      return; // the stream broke off (e.g. on disconnect); keep what arrived
    }
    // The trailer's attributes (lk.transcription_final) are merged into info when it arrives.
    const final = (reader.info.attributes || {})[ATTR_FINAL] === 'true';
    this.emit('transcription', { ...base, delta: '', done: true, final });
  }

  trackSubscribed(track, participant) {
    // The agent's media, or an avatar's, published on the agent's behalf.
    if (!this.isAgent(participant) && !participant.attributes[ATTR_PUBLISH_ON_BEHALF]) return;
    if (track.kind === this.lk.Track.Kind.Video) {
      if (this.videoTrack && this.videoTrack !== track) this.videoTrack.detach(this.videoElement);
      this.videoTrack = track;
      track.attach(this.videoElement);
      this.emit('video', true);
    } else if (track.kind === this.lk.Track.Kind.Audio) {
      this.audioTracks.add(track);
      if (this.audioAllowed) this.attachAudio(track);
    }
  }

  trackUnsubscribed(track) {
    if (track === this.videoTrack) {
      track.detach(this.videoElement);
      this.videoTrack = null;
      this.emit('video', false);
    }
    if (this.audioTracks.delete(track)) {
      for (const element of track.detach()) element.remove();
    }
  }

  attachAudio(track) {
    if (track.attachedElements.length) return;
    const element = track.attach();
    element.setAttribute('playsinline', '');
    this.audioContainer.appendChild(element);
  }

  detachAll() {
    if (this.videoTrack) {
      this.videoTrack.detach(this.videoElement);
      this.videoTrack = null;
      this.emit('video', false);
    }
    for (const track of this.audioTracks) {
      for (const element of track.detach()) element.remove();
    }
    this.audioTracks.clear();
  }
}
