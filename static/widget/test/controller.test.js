import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { ApiError } from '../src/api.js';
import { ErrorCode, State, WidgetController } from '../src/controller.js';
import { ApiDouble, ManualClock, READY, RoomDouble, settle } from './doubles.js';

/** The session endpoint's answer while no worker runs. */
function noWorker(agentName = 'test') {
  return new ApiError(
    503,
    'agent_unavailable',
    'The assistant is not available right now. Please try again later.',
    { error: 'agent_unavailable', agent_name: agentName },
  );
}

function setup({
  previewMode = 'none',
  roomAsync = false,
  room,
  agentTimeoutMs = 5000,
  online = true,
  config = {},
  store,
  now,
} = {}) {
  const api = new ApiDouble();
  const warnings = [];
  const clock = new ManualClock();
  const rooms = [];
  const events = [];
  const views = [];
  let nextRoom = room || null;
  let unlocked = 0;
  const controller = new WidgetController({
    api,
    clock,
    config: () => ({
      persona: 'ben',
      previewMode,
      agentTimeoutMs,
      context: { product: 'Linden City' },
      signedContext: 'signed-facts',
      pageUrl: 'https://shop.example/bikes/linden-city/',
      ...config,
    }),
    store,
    now,
    createRoom: () => {
      const r = nextRoom || new RoomDouble();
      nextRoom = null;
      rooms.push(r);
      return roomAsync ? Promise.resolve(r) : r;
    },
    emit: (name, detail) => events.push({ name, detail }),
    onChange: (view) => views.push(view),
    unlockAudio: () => {
      unlocked += 1;
    },
    warn: (message) => warnings.push(message),
    isOnline: () => online,
  });
  return {
    api,
    warnings,
    clock,
    rooms,
    events,
    views,
    controller,
    get unlocked() {
      return unlocked;
    },
    setNextRoom(r) {
      nextRoom = r;
    },
    eventsNamed(name) {
      return events.filter((e) => e.name === name).map((e) => e.detail);
    },
    states() {
      return events.filter((e) => e.name === 'voice-widget:state').map((e) => e.detail.state);
    },
  };
}

async function startActive(t) {
  const room = new RoomDouble({ agentPresent: true });
  t.setNextRoom(room);
  await t.controller.start();
  await settle();
  return room;
}

describe('click to talk (poster or no preview)', () => {
  let t;
  beforeEach(() => {
    t = setup();
  });

  test('startAudio runs inside the click, before start() yields', () => {
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    t.controller.start();
    assert.deepEqual(room.callNames(), ['startAudio']);
    assert.equal(t.controller.state, State.CONNECTING);
  });

  test('preview → click → start RPC → active, in that order', async () => {
    const room = await startActive(t);
    assert.deepEqual(room.callNames(), [
      'startAudio',
      'enableMicrophone',
      'connect',
      'playRemoteAudio',
      'performRpc',
    ]);
    const rpc = room.calls.find(([name]) => name === 'performRpc');
    assert.equal(rpc[1], 'agent-1');
    assert.equal(rpc[2], 'voice_widget.start');
    assert.deepEqual(JSON.parse(rpc[3]), { protocol: 1 });
    assert.equal(t.controller.state, State.ACTIVE);
    assert.deepEqual(t.states(), ['connecting', 'active']);
  });

  test('the token request carries persona, context, signed context and page URL', async () => {
    await startActive(t);
    assert.deepEqual(t.api.requests, [
      {
        persona: 'ben',
        context: { product: 'Linden City' },
        signed_context: 'signed-facts',
        page_url: 'https://shop.example/bikes/linden-city/',
      },
    ]);
  });

  test('connects with the server URL and token of the session', async () => {
    const room = await startActive(t);
    const connect = room.calls.find(([name]) => name === 'connect');
    assert.deepEqual(connect.slice(1), ['wss://livekit.test.invalid', 'token-1']);
  });

  test('with the LiveKit part still loading, audio is unlocked in the click instead', async () => {
    t = setup({ roomAsync: true });
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    const done = t.controller.start();
    assert.equal(t.unlocked, 1);
    await done;
    await settle();
    assert.equal(room.callNames()[0], 'startAudio');
    assert.equal(t.controller.state, State.ACTIVE);
  });

  test('waits for an agent that joins late', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.CONNECTING);
    assert.ok(!room.callNames().includes('performRpc'));
    t.clock.advance(3000);
    await settle();
    room.agentJoins('agent-7', { ...READY, 'lk.agent.state': 'listening' });
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.controller.agentState, 'listening');
    assert.equal(room.calls.find(([n]) => n === 'performRpc')[1], 'agent-7');
    assert.equal(t.clock.pending(), 0, 'the agent timeout was cleared');
  });

  test('no agent within agent-timeout: agent unavailable, session ended', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    t.clock.advance(4999);
    await settle();
    assert.equal(t.controller.state, State.CONNECTING);
    t.clock.advance(1);
    await settle();
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(t.controller.error.code, ErrorCode.AGENT_UNAVAILABLE);
    assert.deepEqual(t.eventsNamed('voice-widget:error')[0].code, 'agent_unavailable');
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', reason: 'error', detail: 'agent_unavailable' },
    ]);
    assert.ok(room.callNames().includes('disconnect'));
  });

  test('no worker runs (503 agent_unavailable): agent unavailable at once, without waiting', async () => {
    t.api.sessionError = noWorker();
    const room = new RoomDouble();
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(t.controller.error.code, ErrorCode.AGENT_UNAVAILABLE);
    assert.equal(t.controller.error.status, 503);
    assert.ok(!room.callNames().includes('connect'));
    assert.equal(t.api.requests.length, 1, 'one request, which opened nothing');
    assert.deepEqual(t.api.ended, [], 'no conversation to end');
    assert.equal(t.clock.pending(), 0);
  });

  test('no worker runs: one console warning for developers, not for visitors', async () => {
    t.api.sessionError = noWorker('shop');
    t.api.healthUrl = 'https://shop.example/voice-widget/api/health/';
    await t.controller.start();
    await settle();
    await t.controller.start(); // "Try again"
    await settle();
    assert.deepEqual(t.warnings, [
      "voice-widget: no agent worker is running for agent 'shop' (start one with " +
        '`python manage.py run_voice_agent dev`; see ' +
        'https://shop.example/voice-widget/api/health/).',
    ]);
    assert.equal(t.controller.error.detail, '', 'the visitor reads the plain message');
  });

  test('a worker started meanwhile: "Try again" opens the conversation', async () => {
    t.api.sessionError = noWorker();
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.AGENT_UNAVAILABLE);
    t.api.sessionError = null;
    await startActive(t);
    assert.equal(t.controller.state, State.ACTIVE);
  });

  test('API refusal shows the API detail and status', async () => {
    t.api.sessionError = new ApiError(401, 'login_required', 'Please sign in to talk to Ben.');
    const room = new RoomDouble();
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ERROR);
    assert.deepEqual(t.controller.error, {
      code: 'api_refused',
      detail: 'Please sign in to talk to Ben.',
      status: 401,
    });
    const [event] = t.eventsNamed('voice-widget:error');
    assert.equal(event.code, 'api_refused');
    assert.equal(event.status, 401);
    assert.ok(!room.callNames().includes('connect'));
  });

  test('a spent daily budget is its own error, for a message in the visitor\'s language', async () => {
    t.api.sessionError = new ApiError(
      429,
      'budget_exhausted',
      'This assistant has used its daily budget (5.00 of 5.00 USD) and is not available until midnight (UTC).',
    );
    const room = new RoomDouble();
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(t.controller.error.code, ErrorCode.BUDGET_EXHAUSTED);
    assert.equal(t.controller.error.status, 429);
    const [event] = t.eventsNamed('voice-widget:error');
    assert.equal(event.code, 'budget_exhausted');
    assert.match(event.detail, /daily budget/);
    assert.ok(!room.callNames().includes('connect'));
    assert.deepEqual(t.api.ended, [], 'no session was created, so none is ended');
  });

  test('microphone permission denied', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.microphoneResult = Promise.reject(
      Object.assign(new Error('denied'), { name: 'NotAllowedError' }),
    );
    room.microphoneResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.MIC_DENIED);
    assert.equal(t.eventsNamed('voice-widget:error')[0].code, 'mic_denied');
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', reason: 'error', detail: 'mic_denied' },
    ]);
  });

  test('no microphone at all', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.microphoneResult = Promise.reject(
      Object.assign(new Error('none'), { name: 'NotFoundError' }),
    );
    room.microphoneResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.MIC_UNAVAILABLE);
  });

  test('LiveKit server unreachable', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.connectResult = Promise.reject(new Error('could not establish signal connection'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    t.clock.advance(1500);
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.LIVEKIT_UNREACHABLE);
    assert.equal(t.eventsNamed('voice-widget:error')[0].code, 'livekit_unreachable');
    assert.deepEqual(
      t.api.ended,
      [{ conversation: 'conv-1', reason: 'error', detail: 'livekit_unreachable' }],
      'the created conversation is ended as a failure, saying which',
    );
  });

  test('a refused token is the server\'s problem: not available, and a warning for developers', async () => {
    const room = new RoomDouble({ agentPresent: true });
    // What room-adapter.js makes of livekit-client's ConnectionError NotAllowed (HTTP 401).
    room.connectResult = Promise.reject(
      Object.assign(new Error('invalid token'), { name: 'RoomConnectError', refused: true, status: 401 }),
    );
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    t.clock.advance(1500);
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.LIVEKIT_REFUSED);
    assert.deepEqual(t.eventsNamed('voice-widget:error')[0], {
      code: 'livekit_refused',
      detail: '',
      status: 401,
      conversation: 'conv-1',
    });
    assert.equal(t.warnings.length, 1);
    assert.match(t.warnings[0], /^voice-widget: the LiveKit server at wss:\/\/livekit\.test\.invalid refused/);
    assert.match(t.warnings[0], /HTTP 401.*LIVEKIT_API_KEY and LIVEKIT_API_SECRET/);
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', reason: 'error', detail: 'livekit_refused' },
    ]);
  });

  test('an unreachable server while the visitor is online: a warning, not "check your connection"', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.connectResult = Promise.reject(new Error('could not establish signal connection'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    t.clock.advance(1500);
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.LIVEKIT_UNREACHABLE);
    assert.equal(t.warnings.length, 1);
    assert.match(t.warnings[0], /could not be reached \(could not establish signal connection\)/);
  });

  test('a failed connect while the browser is offline: the visitor\'s connection', async () => {
    t = setup({ online: false });
    const room = new RoomDouble({ agentPresent: true });
    room.connectResult = Promise.reject(new Error('websocket error'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    t.clock.advance(1500);
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.OFFLINE);
    assert.equal(t.eventsNamed('voice-widget:error')[0].code, 'offline');
    assert.deepEqual(t.warnings, [], 'nothing for developers to fix');
    assert.deepEqual(t.api.ended, [{ conversation: 'conv-1', reason: 'error', detail: 'offline' }]);
  });

  test('unreachable server with a denied microphone: the microphone is what to fix', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.microphoneResult = Promise.reject(
      Object.assign(new Error('denied'), { name: 'NotAllowedError' }),
    );
    room.microphoneResult.catch(() => {});
    room.connectResult = Promise.reject(new Error('unreachable'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.MIC_DENIED);
    assert.equal(t.clock.pending(), 1, 'only the (harmless) grace timer is left');
  });

  test('unreachable server does not wait for the deferred microphone publication', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.microphoneResult = new Promise(() => {}); // livekit-client waits 15 s for a connection
    room.connectResult = Promise.reject(new Error('unreachable'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.CONNECTING, 'a moment for a microphone answer');
    t.clock.advance(1500);
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.LIVEKIT_UNREACHABLE);
  });

  test('a publishing failure (not getUserMedia) counts as a connection problem', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.microphoneResult = Promise.reject(
      Object.assign(new Error('publishing rejected'), { name: 'PublishTrackError' }),
    );
    room.microphoneResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.LIVEKIT_UNREACHABLE);
  });

  test('the failed attempt\'s disconnect event does not hide a denied microphone', async () => {
    const room = new RoomDouble({ agentPresent: true });
    let denyMicrophone;
    room.microphoneResult = new Promise((_, reject) => {
      denyMicrophone = () => reject(Object.assign(new Error('no'), { name: 'NotAllowedError' }));
    });
    room.connectResult = Promise.reject(new Error('unreachable'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    room.emit('disconnected', 'connection'); // livekit-client's event for the failed attempt
    assert.equal(t.controller.state, State.CONNECTING);
    denyMicrophone();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.MIC_DENIED);
  });

  test('losing the connection while waiting for the agent is the disconnected error', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    room.emit('disconnected', 'connection');
    assert.equal(t.controller.error.code, ErrorCode.DISCONNECTED);
    assert.equal(t.clock.pending(), 0);
  });

  test('agent refuses the start RPC', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.rpcAnswers.set(
      'voice_widget.start',
      Promise.resolve('{"ok": false, "error": "busy", "detail": "Too many callers."}'),
    );
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.START_FAILED);
    assert.equal(t.controller.error.detail, 'Too many callers.');
  });

  test('start waits until the agent says it is ready (voice_widget.protocol)', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    room.agentJoins('agent-1', { 'lk.agent.state': 'initializing' });
    await settle();
    assert.ok(!room.callNames().includes('performRpc'), 'not called before readiness');
    assert.equal(t.controller.state, State.CONNECTING);
    room.setAgentAttributes(READY);
    await settle();
    assert.ok(room.callNames().includes('performRpc'));
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.clock.pending(), 0);
  });

  test('an agent that joined but never gets ready: start failed after agent-timeout', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    room.agentJoins('agent-1', {});
    await settle();
    t.clock.advance(5000);
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.START_FAILED);
    assert.ok(!room.callNames().includes('performRpc'));
  });

  test('"method not supported" and not_ready are retried with a backoff, then start', async () => {
    const room = new RoomDouble({ agentPresent: true });
    const unsupported = Object.assign(new Error('Method not supported'), { code: 1400 });
    const answers = [
      () => Promise.reject(unsupported),
      () => Promise.resolve('{"ok": false, "error": "not_ready", "detail": "Getting ready."}'),
      () => Promise.resolve('{"ok": true}'),
    ];
    room.rpcAnswers.set('voice_widget.start', () => answers.shift()());
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.CONNECTING, 'an error is never taken for a start');
    t.clock.advance(250);
    await settle();
    assert.equal(t.controller.state, State.CONNECTING);
    t.clock.advance(499);
    await settle();
    assert.equal(t.controller.state, State.CONNECTING, 'the second wait is longer');
    t.clock.advance(1);
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    const starts = room.calls.filter(([n, , method]) => n === 'performRpc' && method === 'voice_widget.start');
    assert.equal(starts.length, 3);
  });

  test('a start that stays unsupported fails clearly once the retry window is over', async () => {
    const room = new RoomDouble({ agentPresent: true });
    const unsupported = Object.assign(new Error('Method not supported'), { code: 1400 });
    room.rpcAnswers.set('voice_widget.start', () => Promise.reject(unsupported));
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    for (let i = 0; i < 40 && t.controller.state === State.CONNECTING; i++) {
      t.clock.advance(2000);
      await settle();
    }
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(t.controller.error.code, ErrorCode.START_FAILED);
    assert.equal(t.controller.error.detail, '', 'SDK messages are not shown to visitors');
    assert.ok(t.clock.now >= 15000 && t.clock.now <= 20000, `gave up after ${t.clock.now} ms`);
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', reason: 'error', detail: 'start_failed' },
    ]);
  });

  test('an answer without ok is a failed start, not a silent success', async () => {
    const room = new RoomDouble({ agentPresent: true });
    room.rpcAnswers.set('voice_widget.start', Promise.resolve('not json'));
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.START_FAILED);
  });

  test('an agent that could not join: the status says failed, shown within seconds', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    t.clock.advance(2000);
    await settle();
    assert.equal(t.controller.state, State.CONNECTING);
    assert.deepEqual(t.api.statusAsked, ['conv-1']);
    t.api.statusAnswer = { status: 'failed', end_reason: 'error' };
    t.clock.advance(2000);
    await settle();
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(t.controller.error.code, ErrorCode.AGENT_FAILED);
    assert.equal(t.clock.pending(), 0);
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', reason: 'error', detail: 'agent_failed' },
    ]);
  });

  test('a conversation ended while waiting shows the ending on record', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    t.api.statusAnswer = { status: 'ended', end_reason: 'participant_left' };
    t.clock.advance(2000);
    await settle();
    assert.equal(t.controller.state, State.ENDED);
    assert.equal(t.controller.endReason, 'participant_left');
  });

  test('start RPC timing out is an error with retry', async () => {
    const room = new RoomDouble({ agentPresent: true });
    const timeout = Object.assign(new Error('Response timeout'), { code: 1502 });
    room.rpcAnswers.set('voice_widget.start', Promise.reject(timeout));
    room.rpcAnswers.get('voice_widget.start').catch(() => {});
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.START_FAILED);
    // Retry is a new click: a fresh session and room.
    const second = new RoomDouble({ agentPresent: true });
    t.setNextRoom(second);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.api.requests.length, 2);
  });

  test('a second click while connecting does nothing', async () => {
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    t.controller.start();
    await settle();
    assert.equal(t.rooms.length, 1);
    assert.equal(t.api.requests.length, 1);
  });
});

describe('live preview', () => {
  test('connects when visible without microphone or sound, then the click starts', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    await t.controller.preview();
    assert.equal(t.controller.state, State.PREVIEW);
    assert.deepEqual(room.callNames(), ['connect']);
    room.emit('video', true);
    assert.equal(t.controller.view().hasVideo, true);

    t.controller.start();
    // Both inside the click: sound unlocked, microphone requested.
    assert.deepEqual(room.callNames(), ['connect', 'startAudio', 'enableMicrophone']);
    await settle();
    assert.deepEqual(room.callNames(), [
      'connect',
      'startAudio',
      'enableMicrophone',
      'playRemoteAudio',
      'performRpc',
    ]);
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.api.requests.length, 1, 'the preview session is the conversation');
  });

  test('a preview that failed is not retried on the next scroll into view', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    room.connectResult = Promise.reject(new Error('unreachable'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.preview();
    assert.equal(t.controller.state, State.IDLE);
    await t.controller.preview();
    assert.equal(t.api.requests.length, 1);
    assert.equal(t.rooms.length, 1);
  });

  test('preview does nothing for poster or none', async () => {
    const t = setup({ previewMode: 'poster' });
    await t.controller.preview();
    assert.equal(t.rooms.length, 0);
    assert.equal(t.api.requests.length, 0);
  });

  test('no worker: the preview does not connect, the click explains', async () => {
    const t = setup({ previewMode: 'live' });
    t.api.sessionError = noWorker();
    await t.controller.preview();
    assert.equal(t.controller.state, State.IDLE);
    assert.equal(t.api.requests.length, 1, 'refused: no conversation opened');
    assert.ok(!t.rooms.some((room) => room.callNames().includes('connect')));
    assert.equal(t.warnings.length, 1, 'the developer hears of it before anyone clicks');
    await t.controller.start();
    await settle();
    assert.equal(t.controller.error.code, ErrorCode.AGENT_UNAVAILABLE);
    assert.equal(t.warnings.length, 1, 'once');
  });

  test('no worker at first: the preview connects once a worker runs', async () => {
    const t = setup({ previewMode: 'live' });
    t.api.sessionError = noWorker();
    await t.controller.preview();
    assert.equal(t.controller.state, State.IDLE);
    t.api.sessionError = null;
    await t.controller.preview();
    assert.equal(t.controller.state, State.PREVIEW);
    assert.equal(t.api.requests.length, 2);
  });

  test('the agent leaving an unclicked preview goes back to idle quietly', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    await t.controller.preview();
    room.setAgentAttributes({ 'voice_widget.end_reason': 'idle_timeout' });
    assert.equal(t.controller.state, State.IDLE);
    assert.equal(t.eventsNamed('voice-widget:error').length, 0);
    assert.equal(t.api.ended.length, 1);
  });

  test('a click during the preview connection adopts it', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    let release;
    room.connectResult = new Promise((resolve) => {
      release = resolve;
    });
    t.setNextRoom(room);
    const preview = t.controller.preview();
    await settle();
    t.controller.start();
    release();
    await preview;
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.rooms.length, 1);
    assert.equal(t.api.requests.length, 1);
  });

  test('avatar failure shows the poster instead of the video', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    await t.controller.preview();
    room.emit('video', true);
    room.setAgentAttributes({ 'voice_widget.avatar': 'failed' });
    assert.equal(t.controller.view().hasVideo, false);
    assert.equal(t.controller.view().avatarFailed, true);
  });
});

describe('active conversation', () => {
  let t;
  let room;
  beforeEach(async () => {
    t = setup();
    room = await startActive(t);
  });

  test('agent state follows lk.agent.state and is in the state event', () => {
    room.setAgentAttributes({ 'lk.agent.state': 'thinking' });
    assert.equal(t.controller.view().agentState, 'thinking');
    room.setAgentAttributes({ 'lk.agent.state': 'speaking' });
    const last = t.eventsNamed('voice-widget:state').at(-1);
    assert.deepEqual([last.state, last.agentState], ['active', 'speaking']);
  });

  test('captions: interim and final merged by segment, in spoken order', () => {
    const agent = { role: 'agent', segmentId: 'SG_a' };
    room.emit('transcription', { ...agent, streamId: 's1', delta: 'Hello, ' });
    room.emit('transcription', { ...agent, streamId: 's1', delta: 'how can I help?' });
    // The visitor's speech: one stream per interim result, each with the whole text.
    const user = { role: 'user', segmentId: 'SG_b' };
    room.emit('transcription', { ...user, streamId: 'u1', delta: 'I need' });
    room.emit('transcription', { ...user, streamId: 'u1', done: true, final: false });
    room.emit('transcription', { ...user, streamId: 'u2', delta: 'I need a bike' });
    room.emit('transcription', { ...user, streamId: 'u2', done: true, final: true });
    room.emit('transcription', { ...agent, streamId: 's1', done: true, final: true });
    assert.deepEqual(t.controller.view().captions, [
      { id: 'SG_a', role: 'agent', text: 'Hello, how can I help?', final: true },
      { id: 'SG_b', role: 'user', text: 'I need a bike', final: true },
    ]);
    const transcripts = t.eventsNamed('voice-widget:transcript');
    assert.deepEqual(transcripts.at(-1), {
      id: 'SG_a',
      role: 'agent',
      text: 'Hello, how can I help?',
      final: true,
    });
    assert.ok(transcripts.some((e) => e.id === 'SG_b' && e.text === 'I need' && !e.final));
  });

  test('mute toggles the microphone', async () => {
    await t.controller.toggleMute();
    assert.equal(t.controller.view().muted, true);
    await t.controller.toggleMute();
    assert.deepEqual(
      room.calls.filter(([n]) => n === 'setMicrophoneMuted').map(([, m]) => m),
      [true, false],
    );
  });

  test('end: RPC to the agent, disconnect, end endpoint, ended event', async () => {
    await t.controller.end();
    assert.equal(t.controller.state, State.ENDED);
    const rpcs = room.calls.filter(([n]) => n === 'performRpc').map(([, , method]) => method);
    assert.deepEqual(rpcs, ['voice_widget.start', 'voice_widget.end']);
    assert.ok(room.callNames().includes('disconnect'));
    assert.deepEqual(t.api.ended, [{ conversation: 'conv-1' }]);
    assert.deepEqual(t.eventsNamed('voice-widget:ended'), [
      { reason: 'client_end', conversation: 'conv-1' },
    ]);
  });

  test('end leaves the room only once the agent has answered voice_widget.end', async () => {
    let answer;
    room.rpcAnswers.set('voice_widget.end', new Promise((resolve) => (answer = resolve)));
    const ending = t.controller.end();
    await settle();
    assert.equal(t.controller.state, State.ENDED, 'the visitor sees the end at once');
    assert.ok(!room.callNames().includes('disconnect'), 'still in the room: the agent is told');
    answer('{"ok": true}');
    await ending;
    await settle();
    assert.ok(room.callNames().includes('disconnect'));
  });

  test('end leaves the room after a moment when the agent does not answer', async () => {
    room.rpcAnswers.set('voice_widget.end', new Promise(() => {}));
    t.controller.end();
    await settle();
    t.clock.advance(1499);
    await settle();
    assert.ok(!room.callNames().includes('disconnect'));
    t.clock.advance(1);
    await settle();
    assert.ok(room.callNames().includes('disconnect'));
  });

  test('an end request that meets an ending on record shows that ending', async () => {
    t.api.endAnswer = { status: 'ended', end_reason: 'max_duration' };
    await t.controller.end();
    assert.equal(t.controller.state, State.ENDED);
    assert.equal(t.controller.endReason, 'max_duration');
    assert.equal(t.views.at(-1).endReason, 'max_duration');
  });

  test('start again after the end opens a new conversation', async () => {
    await t.controller.end();
    const second = new RoomDouble({ agentPresent: true });
    t.setNextRoom(second);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.api.requests.length, 2);
    assert.deepEqual(t.controller.view().captions, []);
  });

  test('agent ends by attribute with its reason', () => {
    room.setAgentAttributes({ 'voice_widget.end_reason': 'max_duration' });
    assert.equal(t.controller.state, State.ENDED);
    assert.equal(t.controller.view().endReason, 'max_duration');
    assert.deepEqual(t.eventsNamed('voice-widget:ended'), [
      { reason: 'max_duration', conversation: 'conv-1' },
    ]);
  });

  test('agent ends by RPC voice_widget.ended', async () => {
    const answer = await room.agentCalls('voice_widget.ended', '{"reason": "agent_end"}');
    assert.deepEqual(JSON.parse(answer), { ok: true });
    assert.equal(t.controller.state, State.ENDED);
    assert.equal(t.controller.view().endReason, 'agent_end');
  });

  test('the agent leaving ends the conversation', () => {
    room.emit('agent-left', 'agent-1');
    assert.equal(t.controller.state, State.ENDED);
    assert.equal(t.eventsNamed('voice-widget:ended').length, 1);
  });

  test('audio blocked: flagged with an error event, cleared by the tap', async () => {
    room.canPlaybackAudio = false;
    room.emit('audio-playback', false);
    assert.equal(t.controller.view().audioBlocked, true);
    assert.equal(t.eventsNamed('voice-widget:error').at(-1).code, 'audio_blocked');
    assert.equal(t.controller.state, State.ACTIVE, 'the conversation goes on');
    room.canPlaybackAudio = true;
    await t.controller.enableAudio();
    assert.equal(t.controller.view().audioBlocked, false);
  });

  test('reconnecting is shown; giving up is the disconnected error', () => {
    room.emit('reconnecting');
    assert.equal(t.controller.view().reconnecting, true);
    room.emit('reconnected');
    assert.equal(t.controller.view().reconnecting, false);
    room.emit('reconnecting');
    room.emit('disconnected', 'connection');
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(t.controller.error.code, ErrorCode.DISCONNECTED);
    assert.equal(t.eventsNamed('voice-widget:error').at(-1).code, 'disconnected');
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', reason: 'error', detail: 'disconnected' },
    ]);
  });

  test('the room closing ends the conversation', () => {
    room.emit('disconnected', 'room_closed');
    assert.equal(t.controller.state, State.ENDED);
  });

  test('page unload ends the session with a beacon: the visitor left', () => {
    t.controller.pageHidden();
    assert.deepEqual(t.api.ended, [
      { conversation: 'conv-1', beacon: true, reason: 'participant_left' },
    ]);
    assert.ok(room.callNames().includes('disconnect'));
  });

  test('transcriptions from an old room are ignored', async () => {
    await t.controller.end();
    room.emit('transcription', { role: 'agent', segmentId: 'x', streamId: 'x', delta: 'late' });
    assert.deepEqual(t.controller.view().captions, []);
  });
});

describe('audio blocked at start', () => {
  test('the tap-to-enable flag and event appear once active', async () => {
    const t = setup();
    const room = new RoomDouble({ agentPresent: true, canPlaybackAudio: false });
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.controller.view().audioBlocked, true);
    assert.equal(t.eventsNamed('voice-widget:error').at(-1).code, 'audio_blocked');
  });
});

describe('end while connecting', () => {
  test('cancels the flow; late results do not revive it', async () => {
    const t = setup();
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    await t.controller.end();
    room.agentJoins();
    await settle();
    assert.equal(t.controller.state, State.ENDED);
    assert.ok(!room.callNames().includes('performRpc'));
    assert.equal(t.clock.pending(), 0);
  });
});

/** What our agent says when the session request told it of the click: ready and started. */
const STARTED = Object.freeze({ ...READY, 'voice_widget.started': '1' });

describe('click-started: the session request says the visitor clicked', () => {
  test('the request after a click says so; the agent greets without voice_widget.start', async () => {
    const t = setup();
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    assert.deepEqual(t.api.sessionOptions, [{ clicked: true }]);
    assert.equal(t.controller.state, State.CONNECTING);
    room.agentJoins('agent-1', { ...STARTED, 'lk.agent.state': 'speaking' });
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.controller.agentState, 'speaking');
    assert.deepEqual(room.callNames(), ['startAudio', 'enableMicrophone', 'connect', 'playRemoteAudio']);
    assert.equal(t.clock.pending(), 0);
  });

  test('the agent\'s audio plays before the microphone is published and before it is ready', async () => {
    const t = setup();
    const room = new RoomDouble();
    room.microphoneResult = new Promise(() => {}); // still publishing
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    assert.ok(room.callNames().includes('playRemoteAudio'));
    assert.equal(t.controller.state, State.CONNECTING);
  });

  test('the greeting\'s captions that come before the agent says it started are kept', async () => {
    const t = setup();
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    const greeting = { role: 'agent', segmentId: 'SG_g', streamId: 'g1' };
    room.emit('transcription', { ...greeting, delta: 'Hello, I am Ben.' });
    room.agentJoins('agent-1', STARTED);
    await settle();
    room.emit('transcription', { ...greeting, delta: '', done: true, final: true });
    assert.equal(t.controller.state, State.ACTIVE);
    assert.deepEqual(t.controller.view().captions, [
      { id: 'SG_g', role: 'agent', text: 'Hello, I am Ben.', final: true },
    ]);
  });

  test('the session request goes out in the click, while the LiveKit part still loads', async () => {
    const t = setup({ roomAsync: true });
    t.controller.start();
    assert.equal(t.api.requests.length, 1, 'not after the LiveKit chunk');
    await settle();
    t.rooms[0].agentJoins('agent-1', STARTED);
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
  });

  test('an agent that does not say it started (an older worker) is started by RPC', async () => {
    const t = setup();
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    await t.controller.start();
    await settle();
    assert.deepEqual(t.api.sessionOptions, [{ clicked: true }]);
    assert.equal(room.calls.filter(([n]) => n === 'performRpc')[0][2], 'voice_widget.start');
    assert.equal(t.controller.state, State.ACTIVE);
  });

  test('a live preview\'s session is requested before any click: the agent waits for the RPC', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    t.setNextRoom(room);
    await t.controller.preview();
    t.controller.start();
    await settle();
    assert.deepEqual(t.api.sessionOptions, [{ clicked: false }]);
    assert.ok(room.callNames().includes('performRpc'));
    assert.equal(t.controller.state, State.ACTIVE);
  });

  test('a click adopting a preview still connecting asks for the microphone once connected', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    let release;
    room.connectResult = new Promise((resolve) => {
      release = resolve;
    });
    t.setNextRoom(room);
    const preview = t.controller.preview();
    await settle();
    t.controller.start();
    await settle();
    assert.ok(!room.callNames().includes('enableMicrophone'), 'not before the connection');
    release();
    await preview;
    await settle();
    assert.deepEqual(room.callNames(), [
      'connect',
      'startAudio',
      'enableMicrophone',
      'playRemoteAudio',
      'performRpc',
    ]);
    assert.deepEqual(t.api.sessionOptions, [{ clicked: false }], 'the preview\'s one request');
    assert.equal(t.controller.state, State.ACTIVE);
  });
});

describe('cancelling a flow (AbortController)', () => {
  test('an end during the session request: the late session is ended, no room joined', async () => {
    const t = setup();
    let answer;
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.api.createSession = (body, options) => {
      t.api.requests.push(body);
      return new Promise((resolve) => {
        answer = () => resolve({ conversation: 'conv-late', end_url: '/end/', end_key: 'k' });
      });
    };
    t.controller.start();
    await settle();
    await t.controller.end();
    assert.equal(t.controller.state, State.ENDED);
    answer();
    await settle();
    assert.deepEqual(t.api.ended, [{ conversation: 'conv-late' }], 'nobody will join it');
    assert.ok(!room.callNames().includes('connect'));
    assert.equal(t.controller.state, State.ENDED);
  });

  test('an end while the room connects: the flow stops where it waits', async () => {
    const t = setup();
    const room = new RoomDouble({ agentPresent: true });
    let connected;
    room.connectResult = new Promise((resolve) => {
      connected = resolve;
    });
    t.setNextRoom(room);
    const flow = t.controller.start();
    await settle();
    await t.controller.end();
    await flow; // settled at once, although the connection never answered
    connected();
    await settle();
    assert.equal(t.controller.state, State.ENDED);
    assert.ok(!room.callNames().includes('playRemoteAudio'));
    assert.ok(!room.callNames().includes('performRpc'));
  });

  test('an end during the start RPC\'s backoff: no further start calls', async () => {
    const t = setup();
    const room = new RoomDouble({ agentPresent: true });
    const unsupported = Object.assign(new Error('Method not supported'), { code: 1400 });
    room.rpcAnswers.set('voice_widget.start', () => Promise.reject(unsupported));
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    await t.controller.end();
    t.clock.advance(2000);
    await settle();
    const starts = room.calls.filter(([n, , method]) => n === 'performRpc' && method === 'voice_widget.start');
    assert.equal(starts.length, 1);
    assert.equal(t.controller.state, State.ENDED);
  });

  test('the page going while connecting aborts the flow', async () => {
    const t = setup();
    const room = new RoomDouble();
    t.setNextRoom(room);
    t.controller.start();
    await settle();
    t.controller.pageHidden();
    room.agentJoins('agent-1', STARTED);
    await settle();
    assert.notEqual(t.controller.state, State.ACTIVE);
    assert.equal(t.clock.pending(), 0, 'the agent wait and the status poll are cleared');
    assert.deepEqual(t.api.ended, [{ conversation: 'conv-1', beacon: true, reason: 'participant_left' }]);
  });

  test('a failed preview is not tried again until a conversation has used the room', async () => {
    const t = setup({ previewMode: 'live' });
    const room = new RoomDouble({ agentPresent: true });
    room.connectResult = Promise.reject(new Error('unreachable'));
    room.connectResult.catch(() => {});
    t.setNextRoom(room);
    await t.controller.preview();
    await t.controller.preview();
    assert.equal(t.rooms.length, 1, 'one try');
    assert.equal(t.controller.state, State.IDLE);
    // The click tries again with a new room (and the preview's session).
    t.setNextRoom(new RoomDouble({ agentPresent: true }));
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.api.requests.length, 1, 'the failed preview\'s conversation is the one used');
  });
});
