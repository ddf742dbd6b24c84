/**
 * room-adapter.js over a test double of livekit-client's exports: the same names and event
 * strings as livekit-client 2.x (RoomEvent values, ParticipantKind.AGENT = 4, …), checked
 * against the real package in the first test.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { LiveKitRoom } from '../src/room-adapter.js';
import { settle } from './doubles.js';

const RoomEvent = {
  ParticipantConnected: 'participantConnected',
  ParticipantDisconnected: 'participantDisconnected',
  ParticipantAttributesChanged: 'participantAttributesChanged',
  TrackSubscribed: 'trackSubscribed',
  TrackUnsubscribed: 'trackUnsubscribed',
  AudioPlaybackStatusChanged: 'audioPlaybackChanged',
  Reconnecting: 'reconnecting',
  Reconnected: 'reconnected',
  Disconnected: 'disconnected',
};
const ParticipantKind = { STANDARD: 0, AGENT: 4 };
const DisconnectReason = {
  CLIENT_INITIATED: 1,
  PARTICIPANT_REMOVED: 4,
  ROOM_DELETED: 5,
  ROOM_CLOSED: 10,
  SIGNAL_CLOSE: 9,
};
const ConnectionState = { Disconnected: 'disconnected', Connected: 'connected' };
const Track = { Kind: { Audio: 'audio', Video: 'video' } };

class FakeElement {
  constructor() {
    this.attributes = {};
    this.removed = false;
    this.children = [];
  }
  setAttribute(name, value) {
    this.attributes[name] = value;
  }
  appendChild(child) {
    this.children.push(child);
  }
  remove() {
    this.removed = true;
  }
}

class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.attachedElements = [];
  }
  attach(element) {
    const target = element || new FakeElement();
    this.attachedElements.push(target);
    return target;
  }
  detach(element) {
    if (element) {
      this.attachedElements = this.attachedElements.filter((e) => e !== element);
      return [element];
    }
    const all = this.attachedElements;
    this.attachedElements = [];
    return all;
  }
}

function participant(identity, kind = ParticipantKind.AGENT, attributes = {}) {
  return { identity, kind, attributes, trackPublications: new Map() };
}

/** A test double of livekit-client's Room: records calls, emits what the test says. */
class RoomDouble extends EventEmitter {
  static last = null;
  constructor(options) {
    super();
    this.options = options;
    this.state = ConnectionState.Disconnected;
    this.remoteParticipants = new Map();
    this.calls = [];
    this.canPlaybackAudio = true;
    this.textHandlers = new Map();
    this.rpcHandlers = new Map();
    this.localParticipant = {
      identity: 'visitor-1',
      trackPublications: new Map([['TR_mic', {}]]),
      setMicrophoneEnabled: async (...args) => this.calls.push(['setMicrophoneEnabled', ...args]),
      performRpc: async (params) => {
        this.calls.push(['performRpc', params]);
        return '{"ok": true}';
      },
      sendText: async (text, options) => {
        this.calls.push(['sendText', text, options]);
        return { id: 'stream-1', topic: options.topic };
      },
    };
    RoomDouble.last = this;
  }
  async connect(url, token, options) {
    this.calls.push(['connect', url, token, options]);
    this.state = ConnectionState.Connected;
  }
  async disconnect() {
    this.calls.push(['disconnect']);
    this.state = ConnectionState.Disconnected;
  }
  startAudio() {
    this.calls.push(['startAudio']);
    return Promise.resolve();
  }
  registerTextStreamHandler(topic, handler) {
    this.textHandlers.set(topic, handler);
  }
  registerRpcMethod(method, handler) {
    this.rpcHandlers.set(method, handler);
  }
  join(p) {
    this.remoteParticipants.set(p.identity, p);
    this.emit(RoomEvent.ParticipantConnected, p);
  }
}

const ConnectionErrorReason = { NotAllowed: 0, ServerUnreachable: 1, WebSocket: 6 };
class ConnectionError extends Error {
  constructor(message, reason, status) {
    super(message);
    this.name = 'ConnectionError';
    this.reason = reason;
    this.status = status;
  }
}

const livekitDouble = {
  ConnectionError,
  ConnectionErrorReason,
  Room: RoomDouble,
  RoomEvent,
  ParticipantKind,
  DisconnectReason,
  ConnectionState,
  Track,
};

/** A text stream reader as livekit-client hands it over: info, and chunks as deltas. */
function textStream(id, attributes, chunks, trailer = {}) {
  const info = { id, topic: 'lk.transcription', attributes: { ...attributes } };
  return {
    info,
    async *[Symbol.asyncIterator]() {
      for (const chunk of chunks) yield chunk;
      info.attributes = { ...info.attributes, ...trailer };
    },
  };
}

function setup() {
  const video = new FakeElement();
  const audio = new FakeElement();
  const room = new LiveKitRoom(livekitDouble, { videoElement: video, audioContainer: audio });
  const lkRoom = RoomDouble.last;
  const events = [];
  for (const name of [
    'agent-joined',
    'agent-left',
    'agent-attributes',
    'transcription',
    'video',
    'audio-playback',
    'reconnecting',
    'reconnected',
    'disconnected',
  ]) {
    room.on(name, (...args) => events.push([name, ...args]));
  }
  return { room, lkRoom, video, audio, events };
}

describe('the test double matches livekit-client', () => {
  test('event names and enum values are the real ones', () => {
    const source = readFileSync(
      new URL('../node_modules/livekit-client/dist/livekit-client.esm.mjs', import.meta.url),
      'utf8',
    );
    for (const [name, value] of Object.entries(RoomEvent)) {
      assert.match(source, new RegExp(`RoomEvent\\["${name}"\\] = "${value}"`), name);
    }
    const protocol = readFileSync(
      new URL('../node_modules/@livekit/protocol/dist/index.d.ts', import.meta.url),
      'utf8',
    );
    for (const [name, value] of Object.entries(ConnectionErrorReason)) {
      assert.match(source, new RegExp(`ConnectionErrorReason\\["${name}"\\] = ${value}\\]`), name);
    }
    assert.match(protocol, /AGENT = 4,/);
    for (const [name, value] of Object.entries(DisconnectReason)) {
      assert.match(protocol, new RegExp(`${name} = ${value},`), name);
    }
  });
});

describe('LiveKitRoom', () => {
  async function connectError(thrown) {
    const { room, lkRoom } = setup();
    lkRoom.connect = async () => {
      throw thrown;
    };
    return room.connect('wss://lk.test', 'token').then(
      () => assert.fail('connect should fail'),
      (error) => error,
    );
  }

  test('a token the server refuses (401/403 from its validate endpoint) is "refused"', async () => {
    const cause = new ConnectionError('invalid token', ConnectionErrorReason.NotAllowed, 401);
    const error = await connectError(cause);
    assert.equal(error.name, 'RoomConnectError');
    assert.equal(error.refused, true);
    assert.equal(error.status, 401);
    assert.equal(error.cause, cause);
  });

  test('a server that cannot be reached, or any other failure, is not "refused"', async () => {
    for (const thrown of [
      new ConnectionError('unreachable', ConnectionErrorReason.ServerUnreachable),
      new ConnectionError('ws closed', ConnectionErrorReason.WebSocket, 502),
      new TypeError('Failed to fetch'),
    ]) {
      const error = await connectError(thrown);
      assert.equal(error.refused, false, thrown.message);
      assert.equal(error.message, thrown.message);
    }
  });

  test('the microphone: echo cancellation, noise suppression, auto gain, pre-connect buffer', async () => {
    const { room, lkRoom } = setup();
    assert.deepEqual(lkRoom.options.publishDefaults, { preConnectBuffer: true });
    await room.enableMicrophone();
    const [, enabled, capture, publish] = lkRoom.calls.find(([n]) => n === 'setMicrophoneEnabled');
    assert.equal(enabled, true);
    assert.deepEqual(capture, {
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    });
    assert.deepEqual(publish, { preConnectBuffer: true });
  });

  test('the agent is the agent participant, not an avatar publishing on its behalf', async () => {
    const { room, lkRoom, events } = setup();
    await room.connect('wss://lk.test', 'token');
    lkRoom.join(participant('visitor-2', ParticipantKind.STANDARD));
    lkRoom.join(participant('avatar-1', ParticipantKind.AGENT, { 'lk.publish_on_behalf': 'agent-1' }));
    assert.equal(room.agentIdentity(), null);
    lkRoom.join(participant('agent-1', ParticipantKind.AGENT, { 'lk.agent.state': 'listening' }));
    assert.equal(room.agentIdentity(), 'agent-1');
    assert.deepEqual(room.agentAttributes(), { 'lk.agent.state': 'listening' });
    assert.deepEqual(
      events.filter(([n]) => n === 'agent-joined'),
      [['agent-joined', 'agent-1']],
    );
  });

  test('an agent already in the room when connecting is announced', async () => {
    const { room, lkRoom, events } = setup();
    lkRoom.remoteParticipants.set('agent-1', participant('agent-1'));
    await room.connect('wss://lk.test', 'token');
    assert.deepEqual(events, [['agent-joined', 'agent-1']]);
  });

  test("the agent's attribute changes and departure", async () => {
    const { room, lkRoom, events } = setup();
    await room.connect('wss://lk.test', 'token');
    const agent = participant('agent-1');
    lkRoom.join(agent);
    agent.attributes = { 'lk.agent.state': 'speaking' };
    lkRoom.emit(RoomEvent.ParticipantAttributesChanged, { 'lk.agent.state': 'speaking' }, agent);
    lkRoom.remoteParticipants.delete('agent-1');
    lkRoom.emit(RoomEvent.ParticipantDisconnected, agent);
    assert.deepEqual(events.slice(1), [
      ['agent-attributes', { 'lk.agent.state': 'speaking' }],
      ['agent-left', 'agent-1'],
    ]);
  });

  test("the avatar's video is attached to the widget's video element at once", async () => {
    const { room, lkRoom, video, events } = setup();
    await room.connect('wss://lk.test', 'token');
    const avatar = participant('avatar-1', ParticipantKind.AGENT, {
      'lk.publish_on_behalf': 'agent-1',
    });
    const track = new FakeTrack('video');
    lkRoom.emit(RoomEvent.TrackSubscribed, track, {}, avatar);
    assert.deepEqual(track.attachedElements, [video]);
    assert.deepEqual(events, [['video', true]]);
    lkRoom.emit(RoomEvent.TrackUnsubscribed, track);
    assert.deepEqual(track.attachedElements, []);
    assert.deepEqual(events.at(-1), ['video', false]);
  });

  test("the agent's audio stays unplayed until playRemoteAudio (the click)", async () => {
    const { room, lkRoom, audio } = setup();
    await room.connect('wss://lk.test', 'token');
    const track = new FakeTrack('audio');
    lkRoom.emit(RoomEvent.TrackSubscribed, track, {}, participant('agent-1'));
    assert.equal(track.attachedElements.length, 0, 'no audio element during the preview');
    room.playRemoteAudio();
    assert.equal(track.attachedElements.length, 1);
    assert.equal(audio.children[0].attributes.playsinline, '');
    const avatar = participant('avatar-1', ParticipantKind.AGENT, {
      'lk.publish_on_behalf': 'agent-1',
    });
    const later = new FakeTrack('audio');
    lkRoom.emit(RoomEvent.TrackSubscribed, later, {}, avatar);
    assert.equal(later.attachedElements.length, 1, "after the click, the avatar's audio plays");
  });

  test('media of other visitors is ignored', async () => {
    const { room, lkRoom, events } = setup();
    await room.connect('wss://lk.test', 'token');
    const track = new FakeTrack('video');
    lkRoom.emit(RoomEvent.TrackSubscribed, track, {}, participant('x', ParticipantKind.STANDARD));
    assert.deepEqual(track.attachedElements, []);
    assert.deepEqual(events, []);
  });

  test("transcription: the agent's delta stream, final from the trailer", async () => {
    const { lkRoom, events } = setup();
    const handler = lkRoom.textHandlers.get('lk.transcription');
    handler(
      textStream('S1', { 'lk.segment_id': 'SG_a', 'lk.transcription_final': 'false' }, [
        'Hello ',
        'there',
      ], { 'lk.transcription_final': 'true' }),
      { identity: 'agent-1' },
    );
    await settle();
    assert.deepEqual(
      events.map(([, part]) => [part.role, part.segmentId, part.delta, part.done, part.final]),
      [
        ['agent', 'SG_a', 'Hello ', false, false],
        ['agent', 'SG_a', 'there', false, false],
        ['agent', 'SG_a', '', true, true],
      ],
    );
  });

  test("transcription: the visitor's speech, told by identity or by the microphone track", async () => {
    const { lkRoom, events } = setup();
    const handler = lkRoom.textHandlers.get('lk.transcription');
    handler(textStream('U1', { 'lk.segment_id': 'SG_b' }, ['hi']), { identity: 'visitor-1' });
    handler(
      textStream('U2', { 'lk.segment_id': 'SG_c', 'lk.transcribed_track_id': 'TR_mic' }, ['yo']),
      { identity: 'agent-1' },
    );
    await settle();
    assert.deepEqual(
      events.filter(([, p]) => !p.done).map(([, p]) => [p.segmentId, p.role]),
      [
        ['SG_b', 'user'],
        ['SG_c', 'user'],
      ],
    );
  });

  test('disconnect reasons: ours, the room closing, the network giving up', async () => {
    const { room, lkRoom, events } = setup();
    await room.connect('wss://lk.test', 'token');
    lkRoom.emit(RoomEvent.Disconnected, DisconnectReason.ROOM_DELETED);
    lkRoom.emit(RoomEvent.Disconnected, DisconnectReason.SIGNAL_CLOSE);
    lkRoom.emit(RoomEvent.Disconnected, DisconnectReason.CLIENT_INITIATED);
    await room.disconnect();
    lkRoom.emit(RoomEvent.Disconnected, DisconnectReason.SIGNAL_CLOSE);
    assert.deepEqual(
      events.map(([, kind]) => kind),
      ['room_closed', 'connection', 'client', 'client'],
    );
  });

  test("typed text goes out as a text stream on LiveKit Agents' chat topic", async () => {
    const { room, lkRoom } = setup();
    await room.sendText('Do you have cargo bikes?');
    assert.deepEqual(lkRoom.calls.at(-1), ['sendText', 'Do you have cargo bikes?', { topic: 'lk.chat' }]);
  });

  test('the double sendText has the signature of livekit-client', () => {
    const types = readFileSync(
      new URL(
        '../node_modules/livekit-client/dist/src/room/participant/LocalParticipant.d.ts',
        import.meta.url,
      ),
      'utf8',
    );
    assert.match(types, /sendText\(text: string, options\?: SendTextOptions\): Promise<TextStreamInfo>/);
  });

  test('RPCs: performRpc with the timeout; registered handlers get the payload', async () => {
    const { room, lkRoom } = setup();
    await room.performRpc('agent-1', 'voice_widget.start', '{"protocol":1}', 10000);
    assert.deepEqual(lkRoom.calls.at(-1), [
      'performRpc',
      {
        destinationIdentity: 'agent-1',
        method: 'voice_widget.start',
        payload: '{"protocol":1}',
        responseTimeout: 10000,
      },
    ]);
    room.registerRpcMethod('voice_widget.ended', async (payload, caller) => `${caller}:${payload}`);
    const answer = await lkRoom.rpcHandlers.get('voice_widget.ended')({
      payload: '{"reason":"agent_end"}',
      callerIdentity: 'agent-1',
    });
    assert.equal(answer, 'agent-1:{"reason":"agent_end"}');
  });

  test('audio playback status and reconnection are passed on', async () => {
    const { room, lkRoom, events } = setup();
    await room.connect('wss://lk.test', 'token');
    lkRoom.canPlaybackAudio = false;
    lkRoom.emit(RoomEvent.AudioPlaybackStatusChanged);
    lkRoom.emit(RoomEvent.Reconnecting);
    lkRoom.emit(RoomEvent.Reconnected);
    assert.deepEqual(events, [['audio-playback', false], ['reconnecting'], ['reconnected']]);
    assert.equal(room.canPlaybackAudio, false);
  });

  test('mute is the microphone switched off and on', async () => {
    const { room, lkRoom } = setup();
    await room.setMicrophoneMuted(true);
    await room.setMicrophoneMuted(false);
    assert.deepEqual(
      lkRoom.calls.filter(([n]) => n === 'setMicrophoneEnabled').map(([, on]) => on),
      [false, true],
    );
  });
});
