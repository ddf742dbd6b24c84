import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';

import { ApiError } from '../src/api.js';
import { State, WidgetController } from '../src/controller.js';
import { ApiDouble, ManualClock, RoomDouble, StorageDouble, settle } from './doubles.js';

const KEY = 'voice-widget:resume:ben';
const RESUMABLE = {
  resume_url: '/voice-widget/api/sessions/conv-1/resume/',
  resume_window: 120,
};

/** One page load: a controller over the tab's storage (shared across "reloads"). */
function page(storage, { now = 1_000_000, api = new ApiDouble() } = {}) {
  const events = [];
  const rooms = [];
  let nextRoom = null;
  const controller = new WidgetController({
    api,
    clock: new ManualClock(),
    config: () => ({ persona: 'ben', previewMode: 'none', agentTimeoutMs: 5000 }),
    createRoom: () => {
      const room = nextRoom || new RoomDouble({ agentPresent: true });
      nextRoom = null;
      rooms.push(room);
      return room;
    },
    emit: (name, detail) => events.push({ name, detail }),
    storage,
    now: () => now,
  });
  return {
    api,
    controller,
    events,
    rooms,
    setNextRoom(room) {
      nextRoom = room;
    },
    states: () => events.filter((e) => e.name === 'voice-widget:state').map((e) => e.detail.state),
  };
}

async function activeConversation(storage, options) {
  const p = page(storage, options);
  p.api.sessionAnswer = {
    ...(await new ApiDouble().createSession({})),
    ...RESUMABLE,
  };
  await p.controller.start();
  await settle();
  assert.equal(p.controller.state, State.ACTIVE);
  return p;
}

function resumeAnswer() {
  return {
    conversation: 'conv-1',
    status: 'active',
    server_url: 'wss://livekit.test.invalid',
    participant_token: 'token-resumed',
    room_name: 'room-1',
    identity: 'visitor-1',
    transcript: [
      { role: 'agent', text: 'Hello, how can I help?' },
      { role: 'user', text: 'Which bike carries two kids?' },
    ],
    agent: 'present',
    resume_window: 120,
  };
}

describe('surviving a reload', () => {
  let storage;
  beforeEach(() => {
    storage = new StorageDouble();
  });

  test('a page going away keeps a resumable conversation for the tab instead of ending it', async () => {
    const first = await activeConversation(storage);
    const room = first.rooms[0];
    first.controller.pageHidden({ resumable: true });
    assert.deepEqual(first.api.ended, []);
    assert.ok(room.callNames().includes('disconnect'));
    const saved = JSON.parse(storage.getItem(KEY));
    assert.equal(saved.conversation, 'conv-1');
    assert.equal(saved.end_key, 'key-1');
    assert.equal(saved.resume_url, RESUMABLE.resume_url);
    assert.equal(saved.expires, 1_000_000 + 120_000);
  });

  test('the element being removed (not a page going) still ends it at once', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden();
    assert.deepEqual(first.api.ended, [
      { conversation: 'conv-1', beacon: true, reason: 'participant_left' },
    ]);
    assert.equal(storage.getItem(KEY), null);
  });

  test('a server without a resume window gets the ending beacon', async () => {
    const first = await activeConversation(storage);
    first.controller.session.resume_window = 0;
    first.controller.pageHidden({ resumable: true });
    assert.equal(first.api.ended.length, 1);
    assert.equal(storage.getItem(KEY), null);
  });

  test('the next page rejoins: same room, transcript shown, active without a click', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden({ resumable: true });

    const next = page(storage, { now: 1_000_000 + 5_000 });
    next.api.resumeAnswer = resumeAnswer();
    assert.equal(await next.controller.resume(), true);
    assert.equal(next.api.resumed.length, 1);
    assert.equal(next.api.resumed[0].end_key, 'key-1');
    assert.deepEqual(next.api.requests, []); // no new conversation
    const room = next.rooms[0];
    const connect = room.calls.find(([name]) => name === 'connect');
    assert.deepEqual(connect.slice(1), ['wss://livekit.test.invalid', 'token-resumed']);
    assert.ok(room.callNames().includes('enableMicrophone'));
    assert.equal(next.controller.state, State.ACTIVE);
    assert.deepEqual(next.states(), ['connecting', 'active']);
    assert.deepEqual(
      next.controller.view().captions.map(({ role, text }) => [role, text]),
      [
        ['agent', 'Hello, how can I help?'],
        ['user', 'Which bike carries two kids?'],
      ],
    );
    assert.deepEqual(
      next.events.filter((e) => e.name === 'voice-widget:resumed').map((e) => e.detail),
      [{ conversation: 'conv-1' }],
    );
    // The stored entry is used once; ending now ends the same conversation with its key.
    assert.equal(storage.getItem(KEY), null);
    await next.controller.end();
    assert.equal(next.api.ended.at(-1).conversation, 'conv-1');
  });

  test('past the window nothing is resumed and the widget stays idle', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden({ resumable: true });
    const later = page(storage, { now: 1_000_000 + 121_000 });
    assert.equal(await later.controller.resume(), false);
    assert.equal(later.api.resumed, undefined);
    assert.equal(later.controller.state, State.IDLE);
    assert.equal(storage.getItem(KEY), null);
  });

  test('a refused resume (the conversation ended meanwhile) goes back to idle quietly', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden({ resumable: true });
    const next = page(storage, { now: 1_000_000 + 1_000 });
    next.api.resumeError = new ApiError(409, 'conversation_ended', 'This conversation has ended.');
    assert.equal(await next.controller.resume(), false);
    assert.equal(next.controller.state, State.IDLE);
    assert.equal(next.controller.error, null);
    assert.deepEqual(next.rooms, []);
  });

  test('another persona on the next page does not take the conversation', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden({ resumable: true });
    assert.ok(storage.getItem(KEY));
    assert.equal(storage.getItem('voice-widget:resume:paula'), null);
  });

  test('a conversation still connecting at pagehide is ended, not kept', async () => {
    const p = page(storage);
    p.api.sessionAnswer = { ...(await new ApiDouble().createSession({})), ...RESUMABLE };
    p.setNextRoom(new RoomDouble()); // no agent yet
    p.controller.start();
    await settle();
    assert.equal(p.controller.state, State.CONNECTING);
    p.controller.pageHidden({ resumable: true });
    assert.equal(p.api.ended.length, 1);
    assert.equal(storage.getItem(KEY), null);
  });

  test('an agent that says it started (voice_widget.started) is rejoined without a start call', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden({ resumable: true });
    const next = page(storage, { now: 1_000_000 + 5_000 });
    next.api.resumeAnswer = resumeAnswer();
    const room = new RoomDouble({ agentPresent: true });
    room.attributes['voice_widget.started'] = '1';
    next.setNextRoom(room);
    assert.equal(await next.controller.resume(), true);
    assert.equal(next.controller.state, State.ACTIVE);
    assert.ok(!room.callNames().includes('performRpc'));
    assert.deepEqual(room.callNames().slice(0, 4), [
      'connect',
      'enableMicrophone',
      'startAudio',
      'playRemoteAudio',
    ]);
  });

  test('a reload while rejoining aborts the rejoin: no active state afterwards', async () => {
    const first = await activeConversation(storage);
    first.controller.pageHidden({ resumable: true });
    const next = page(storage, { now: 1_000_000 + 5_000 });
    next.api.resumeAnswer = resumeAnswer();
    const room = new RoomDouble();
    next.setNextRoom(room);
    const resumed = next.controller.resume();
    await settle();
    next.controller.pageHidden();
    room.agentJoins();
    assert.equal(await resumed, false);
    assert.equal(next.controller.state, State.CONNECTING);
    assert.ok(!room.callNames().includes('performRpc'));
  });
});
