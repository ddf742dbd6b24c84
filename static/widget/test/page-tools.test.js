import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { State, WidgetController } from '../src/controller.js';
import { PageTools, RPC_PAGE_TOOL, TOOL_EVENT } from '../src/page-tools.js';
import { ApiDouble, ManualClock, RoomDouble, settle } from './doubles.js';

const call = (name, args = {}, extra = {}) => JSON.stringify({ name, arguments: args, ...extra });

function tools() {
  const clock = new ManualClock();
  const events = [];
  const pageTools = new PageTools({ emit: (name, detail) => events.push({ name, detail }), clock });
  return { clock, events, pageTools };
}

describe('page tools', () => {
  test("the handler's result is the answer, with the model's arguments passed in", async () => {
    const { pageTools } = tools();
    const seen = [];
    pageTools.register('show_product', { description: 'Show a product.' }, async (args) => {
      seen.push(args);
      return { shown: args.product };
    });
    const answer = JSON.parse(await pageTools.call(call('show_product', { product: 'cargo' })));
    assert.deepEqual(answer, { ok: true, result: { shown: 'cargo' } });
    assert.deepEqual(seen, [{ product: 'cargo' }]);
  });

  test('a handler returning nothing answers ok with a null result', async () => {
    const { pageTools } = tools();
    pageTools.register('scroll_top', () => {});
    assert.deepEqual(JSON.parse(await pageTools.call(call('scroll_top'))), {
      ok: true,
      result: null,
    });
  });

  test('an answer too large for LiveKit RPC is an error the model can read', async () => {
    const { pageTools } = tools();
    pageTools.register('dump', () => 'x'.repeat(20000));
    assert.deepEqual(JSON.parse(await pageTools.call(call('dump'))), {
      ok: false,
      error: 'too_large',
      detail: 'dump answered more than the agent can read.',
    });
  });

  test('an unknown tool is an error the model can read', async () => {
    const { pageTools, events } = tools();
    const answer = JSON.parse(await pageTools.call(call('open_cart')));
    assert.deepEqual(answer, {
      ok: false,
      error: 'unknown_tool',
      detail: 'This page has no tool open_cart.',
    });
    assert.deepEqual(
      events.map((e) => [e.name, e.detail.name]),
      [[TOOL_EVENT, 'open_cart']],
      'a listener was asked first',
    );
  });

  test('a handler that throws answers failed with its message', async () => {
    const { pageTools } = tools();
    pageTools.register('show_product', () => {
      throw new Error('no such product');
    });
    pageTools.register('rejects', async () => Promise.reject(new Error('offline')));
    assert.deepEqual(JSON.parse(await pageTools.call(call('show_product'))), {
      ok: false,
      error: 'failed',
      detail: 'show_product failed on the page: no such product',
    });
    assert.equal(
      JSON.parse(await pageTools.call(call('rejects'))).detail,
      'rejects failed on the page: offline',
    );
  });

  test('a handler that never answers times out after the time the agent gave', async () => {
    const { pageTools, clock } = tools();
    pageTools.register('show_product', () => new Promise(() => {}));
    let answer = null;
    pageTools.call(call('show_product', {}, { timeout_ms: 3000 })).then((a) => (answer = a));
    await settle();
    clock.advance(2999);
    await settle();
    assert.equal(answer, null);
    clock.advance(1);
    await settle();
    assert.deepEqual(JSON.parse(answer), {
      ok: false,
      error: 'timeout',
      detail: 'The page did not answer show_product in time.',
    });
    assert.equal(clock.pending(), 0);
  });

  test('a listener of the voice-widget:tool event may answer instead of a handler', async () => {
    const clock = new ManualClock();
    const pageTools = new PageTools({
      clock,
      emit: (name, detail) => {
        if (name === TOOL_EVENT && detail.name === 'show_product') {
          detail.respond(Promise.resolve(`showing ${detail.arguments.product}`));
        }
      },
    });
    assert.deepEqual(JSON.parse(await pageTools.call(call('show_product', { product: 'x' }))), {
      ok: true,
      result: 'showing x',
    });
    assert.equal(JSON.parse(await pageTools.call(call('other'))).error, 'unknown_tool');
  });

  test('unregistering removes the tool; a garbled call is refused', async () => {
    const { pageTools } = tools();
    const unregister = pageTools.register('a', () => 1);
    pageTools.register('b', () => 2);
    unregister();
    pageTools.unregister('b');
    assert.equal(JSON.parse(await pageTools.call(call('a'))).error, 'unknown_tool');
    assert.equal(JSON.parse(await pageTools.call(call('b'))).error, 'unknown_tool');
    assert.equal(JSON.parse(await pageTools.call('not json')).error, 'bad_request');
    assert.throws(() => pageTools.register('c', {}), TypeError);
  });
});

describe('page tools in a conversation', () => {
  async function active() {
    const room = new RoomDouble({ agentPresent: true });
    const controller = new WidgetController({
      api: new ApiDouble(),
      clock: new ManualClock(),
      config: () => ({ persona: 'ben', previewMode: 'none', agentTimeoutMs: 5000 }),
      createRoom: () => room,
      emit: () => {},
      warn: () => {},
      isOnline: () => true,
    });
    await controller.start();
    await settle();
    assert.equal(controller.state, State.ACTIVE);
    return { room, controller };
  }

  test('the agent calls a registered tool by RPC and gets its result', async () => {
    const { room, controller } = await active();
    controller.pageTools.register('show_product', (args) => `shown ${args.product}`);
    const answer = await room.agentCalls(RPC_PAGE_TOOL, call('show_product', { product: 'cargo' }));
    assert.deepEqual(JSON.parse(answer), { ok: true, result: 'shown cargo' });
  });

  test('another participant may not call page tools', async () => {
    const { room, controller } = await active();
    let ran = false;
    controller.pageTools.register('show_product', () => (ran = true));
    const handler = room.rpcHandlers.get(RPC_PAGE_TOOL);
    const answer = JSON.parse(await handler(call('show_product'), 'someone-else'));
    assert.equal(answer.error, 'not_allowed');
    assert.equal(ran, false);
  });
});
