import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ApiError } from '../src/api.js';
import { richText } from '../src/rich-text.js';
import { State, WidgetController } from '../src/controller.js';
import { ApiDouble, ManualClock, RoomDouble, StoreDouble, settle } from './doubles.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOTICE = {
  text: 'This conversation is recorded and processed by AI providers.',
  url: 'https://shop.example/privacy/',
  version: 'abc123',
  maxAgeMs: 30 * DAY_MS,
};
const CONSENT_KEY = 'voice-widget:consent:ben:abc123';

function setup({ config = {}, store = new StoreDouble(), now = 100 * DAY_MS } = {}) {
  const api = new ApiDouble();
  const rooms = [];
  const events = [];
  const clock = { now };
  const controller = new WidgetController({
    api,
    clock: new ManualClock(),
    config: () => ({
      persona: 'ben',
      previewMode: 'none',
      agentTimeoutMs: 5000,
      context: {},
      signedContext: '',
      pageUrl: 'https://shop.example/',
      ...config,
    }),
    createRoom: () => {
      const room = new RoomDouble({ agentPresent: true });
      rooms.push(room);
      return room;
    },
    emit: (name, detail) => events.push({ name, detail }),
    store,
    now: () => clock.now,
  });
  return {
    api,
    rooms,
    store,
    clock,
    controller,
    eventsNamed: (name) => events.filter((e) => e.name === name).map((e) => e.detail),
  };
}

async function active(t) {
  await t.controller.start();
  await settle();
  assert.equal(t.controller.state, State.ACTIVE);
  return t.rooms[t.rooms.length - 1];
}

describe('consent before the microphone', () => {
  test('the first click shows the notice: no conversation, no room, no microphone', async () => {
    const t = setup({ config: { consent: NOTICE } });
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.CONSENT);
    assert.equal(t.api.requests.length, 0);
    assert.equal(t.rooms.length, 0);
  });

  test('accepting remembers it, starts, and sends the version and time with the session', async () => {
    const t = setup({ config: { consent: NOTICE } });
    await t.controller.start();
    await t.controller.acceptConsent();
    await settle();
    assert.equal(t.controller.state, State.ACTIVE);
    assert.equal(t.store.get(CONSENT_KEY), String(t.clock.now));
    assert.deepEqual(t.api.requests[0].consent, {
      version: 'abc123',
      accepted_at: new Date(t.clock.now).toISOString(),
    });
    assert.deepEqual(t.eventsNamed('voice-widget:consent'), [
      { version: 'abc123', acceptedAt: t.clock.now },
    ]);
    assert.ok(t.rooms[0].callNames().includes('enableMicrophone'));
  });

  test('an acceptance within the max age is not asked again', async () => {
    const acceptedAt = 100 * DAY_MS - 29 * DAY_MS;
    const store = new StoreDouble({ [CONSENT_KEY]: String(acceptedAt) });
    const t = setup({ config: { consent: NOTICE }, store });
    await active(t);
    assert.equal(t.api.requests[0].consent.accepted_at, new Date(acceptedAt).toISOString());
  });

  test('an expired acceptance is forgotten and the notice shown again', async () => {
    const store = new StoreDouble({ [CONSENT_KEY]: String(100 * DAY_MS - 31 * DAY_MS) });
    const t = setup({ config: { consent: NOTICE }, store });
    await t.controller.start();
    assert.equal(t.controller.state, State.CONSENT);
    assert.equal(store.get(CONSENT_KEY), null);
  });

  test('a changed notice (another version) is asked for again', async () => {
    const store = new StoreDouble({ [CONSENT_KEY]: String(100 * DAY_MS) });
    const t = setup({ config: { consent: { ...NOTICE, version: 'def456' } }, store });
    await t.controller.start();
    assert.equal(t.controller.state, State.CONSENT);
  });

  test('declining goes back to idle without a conversation', async () => {
    const t = setup({ config: { consent: NOTICE } });
    await t.controller.start();
    t.controller.declineConsent();
    assert.equal(t.controller.state, State.IDLE);
    assert.equal(t.api.requests.length, 0);
    assert.equal(t.store.get(CONSENT_KEY), null);
  });

  test('the server asking for consent again forgets the stored acceptance', async () => {
    const store = new StoreDouble({ [CONSENT_KEY]: String(100 * DAY_MS) });
    const t = setup({ config: { consent: NOTICE }, store });
    t.api.sessionError = new ApiError(400, 'consent_required', 'Accept the notice first.');
    await t.controller.start();
    await settle();
    assert.equal(t.controller.state, State.ERROR);
    assert.equal(store.get(CONSENT_KEY), null);
    t.controller.dismiss();
    await t.controller.start();
    assert.equal(t.controller.state, State.CONSENT);
  });

  test('a live preview waits for the consent (it would open a conversation)', async () => {
    const t = setup({ config: { consent: NOTICE, previewMode: 'live' } });
    await t.controller.preview();
    await settle();
    assert.equal(t.api.requests.length, 0);
    assert.equal(t.controller.state, State.IDLE);
  });

  test('without a notice nothing is asked', async () => {
    const t = setup({ config: { consent: { text: '', url: '', version: '', maxAgeMs: 1 } } });
    await active(t);
    assert.equal(t.api.requests[0].consent, undefined);
  });
});

describe('type or talk', () => {
  test('text only: no microphone, no sound, still active', async () => {
    const t = setup({ config: { mode: 'text' } });
    const room = await active(t);
    const calls = room.callNames();
    for (const name of ['enableMicrophone', 'startAudio', 'playRemoteAudio']) {
      assert.ok(!calls.includes(name), name);
    }
    assert.equal(t.controller.view().mode, 'text');
  });

  test('a typed message goes on lk.chat and shows in the captions, marked typed', async () => {
    const t = setup();
    const room = await active(t);
    assert.equal(await t.controller.sendText('  Do you have cargo bikes?  '), true);
    assert.deepEqual(
      room.calls.filter(([name]) => name === 'sendText'),
      [['sendText', 'Do you have cargo bikes?']],
    );
    const [caption] = t.controller.view().captions;
    assert.deepEqual(caption, {
      id: 'typed-1',
      role: 'user',
      text: 'Do you have cargo bikes?',
      final: true,
      typed: true,
    });
    assert.deepEqual(t.eventsNamed('voice-widget:transcript'), [caption]);
  });

  test('the agent answer follows the typed line in the captions', async () => {
    const t = setup({ config: { mode: 'text' } });
    const room = await active(t);
    await t.controller.sendText('Hours?');
    room.emit('transcription', { streamId: 's1', segmentId: 'a', role: 'agent', delta: 'Nine to six.' });
    assert.deepEqual(
      t.controller.view().captions.map((c) => [c.role, c.text]),
      [
        ['user', 'Hours?'],
        ['agent', 'Nine to six.'],
      ],
    );
  });

  test('a message that cannot be sent is taken back and flagged', async () => {
    const t = setup();
    const room = await active(t);
    room.sendTextResult = Promise.reject(new Error('stream failed'));
    assert.equal(await t.controller.sendText('Hello'), false);
    assert.deepEqual(t.controller.view().captions, []);
    assert.equal(t.controller.view().chatError, true);
    assert.equal(await (room.sendTextResult = Promise.resolve(), t.controller.sendText('Hi')), true);
    assert.equal(t.controller.view().chatError, false);
  });

  test('voice only, empty text or no conversation: nothing is sent', async () => {
    const idle = setup();
    assert.equal(await idle.controller.sendText('Hello'), false);
    const t = setup({ config: { mode: 'voice' } });
    const room = await active(t);
    assert.equal(await t.controller.sendText('Hello'), false);
    const talking = setup();
    const other = await active(talking);
    assert.equal(await talking.controller.sendText('   '), false);
    assert.ok(!room.callNames().includes('sendText'));
    assert.ok(!other.callNames().includes('sendText'));
  });
});

describe('feedback', () => {
  test('after a conversation the visitor may rate it; the rating reaches the API', async () => {
    const t = setup({ config: { feedback: true } });
    await active(t);
    await t.controller.end();
    assert.deepEqual(t.controller.view().feedback, { rating: '', status: '' });
    assert.equal(await t.controller.rate('up'), true);
    assert.deepEqual(t.api.feedback, [{ conversation: 'conv-1', rating: 'up', comment: '' }]);
    assert.equal(t.controller.view().feedback.status, 'sent');
    assert.equal(await t.controller.rate('up', 'Quick and clear'), true);
    assert.deepEqual(t.api.feedback[1], {
      conversation: 'conv-1',
      rating: 'up',
      comment: 'Quick and clear',
    });
    assert.deepEqual(t.controller.view().feedback, { rating: 'up', status: 'sent', comment: true });
    assert.deepEqual(
      t.eventsNamed('voice-widget:feedback').map((e) => [e.rating, e.comment, e.conversation]),
      [
        ['up', '', 'conv-1'],
        ['up', 'Quick and clear', 'conv-1'],
      ],
    );
  });

  test('a rating the API refused is shown as not sent', async () => {
    const t = setup({ config: { feedback: true } });
    await active(t);
    await t.controller.end();
    t.api.feedbackAnswer = false;
    assert.equal(await t.controller.rate('down'), false);
    assert.deepEqual(t.controller.view().feedback, { rating: 'down', status: 'failed', comment: false });
    assert.deepEqual(t.eventsNamed('voice-widget:feedback'), []);
  });

  test('not offered when the persona does not ask, nor for a conversation that never began', async () => {
    const off = setup();
    await active(off);
    await off.controller.end();
    assert.equal(off.controller.view().feedback, null);
    assert.equal(await off.controller.rate('up'), false);

    const early = setup({ config: { feedback: true } });
    early.controller.start();
    await early.controller.end(); // ended while connecting
    assert.equal(early.controller.state, State.ENDED);
    assert.equal(early.controller.view().feedback, null);
  });

  test('starting again clears the form', async () => {
    const t = setup({ config: { feedback: true } });
    await active(t);
    await t.controller.end();
    await t.controller.rate('up');
    await active(t);
    assert.equal(t.controller.view().feedback, null);
  });
});

describe('caption formatting', () => {
  test('links, bold and italic become pieces; everything else stays text', () => {
    assert.deepEqual(
      richText('See **this** and *that*: https://shop.example/bikes. Or [the page](https://shop.example/a).'),
      [
        { text: 'See ' },
        { text: 'this', bold: true },
        { text: ' and ' },
        { text: 'that', italic: true },
        { text: ': ' },
        { text: 'https://shop.example/bikes', href: 'https://shop.example/bikes' },
        { text: '. Or ' },
        { text: 'the page', href: 'https://shop.example/a' },
        { text: '.' },
      ],
    );
  });

  test('HTML and other schemes are never links or markup', () => {
    const text = '<img src=x onerror=alert(1)> [x](javascript:alert(1)) data:text/html,hi <b>b</b>';
    assert.deepEqual(richText(text), [{ text }]);
  });

  test('unfinished emphasis stays as written', () => {
    assert.deepEqual(richText('**almost'), [{ text: '**almost' }]);
    assert.deepEqual(richText('2 * 3 * 4'), [{ text: '2 * 3 * 4' }]);
  });
});
