import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ApiError, createApi, csrfToken } from '../src/api.js';
import { CaptionLog } from '../src/captions.js';
import { LANGUAGES, labelsFor, labelsReady, loadLabels } from '../src/i18n.js';

function fetchDouble(answers) {
  const requests = [];
  const fetch = async (url, init = {}) => {
    requests.push({ url, ...init });
    const answer = answers.shift();
    if (answer instanceof Error) throw answer;
    return {
      ok: answer.status >= 200 && answer.status < 300,
      status: answer.status,
      json: async () => {
        if (answer.body === undefined) throw new SyntaxError('no JSON');
        return answer.body;
      },
    };
  };
  return { fetch, requests };
}

describe('api', () => {
  test('session request: JSON, same-origin credentials, CSRF header from the cookie', async () => {
    const { fetch, requests } = fetchDouble([{ status: 201, body: { conversation: 'c1' } }]);
    const api = createApi({
      sessionsUrl: '/voice-widget/api/sessions/',
      fetch,
      cookies: () => 'theme=dark; csrftoken=abc%3D123',
    });
    const data = await api.createSession({ persona: 'ben' });
    assert.deepEqual(data, { conversation: 'c1' });
    assert.equal(requests[0].method, 'POST');
    assert.equal(requests[0].credentials, 'same-origin');
    assert.equal(requests[0].headers['X-CSRFToken'], 'abc=123');
    assert.equal(requests[0].headers['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(requests[0].body), { persona: 'ben' });
  });

  test('the CSRF token from the template tag wins over the cookie', async () => {
    const { fetch, requests } = fetchDouble([{ status: 201, body: {} }]);
    const api = createApi({
      sessionsUrl: '/s/',
      fetch,
      cookies: () => 'csrftoken=from-cookie',
      csrfToken: 'from-tag',
    });
    await api.createSession({});
    assert.equal(requests[0].headers['X-CSRFToken'], 'from-tag');
  });

  test("end_url is resolved against the API's URL, not the page's", async () => {
    const { fetch } = fetchDouble([
      {
        status: 201,
        body: {
          end_url: '/voice-widget/api/sessions/c1/end/',
          status_url: '/voice-widget/api/sessions/c1/status/',
          end_key: 'k',
        },
      },
    ]);
    const api = createApi({
      sessionsUrl: 'https://shop.example/voice-widget/api/sessions/',
      fetch,
      cookies: () => '',
    });
    const data = await api.createSession({});
    assert.equal(data.end_url, 'https://shop.example/voice-widget/api/sessions/c1/end/');
    assert.equal(data.status_url, 'https://shop.example/voice-widget/api/sessions/c1/status/');
  });

  test('no CSRF header without the cookie', async () => {
    const { fetch, requests } = fetchDouble([{ status: 201, body: {} }]);
    const api = createApi({ sessionsUrl: '/s/', fetch, cookies: () => '' });
    await api.createSession({});
    assert.equal(requests[0].headers['X-CSRFToken'], undefined);
  });

  for (const status of [400, 401, 403, 404, 413, 429, 503]) {
    test(`refusal ${status} carries the API's code and detail`, async () => {
      const { fetch } = fetchDouble([
        { status, body: { error: `code_${status}`, detail: `Message ${status}` } },
      ]);
      const api = createApi({ sessionsUrl: '/s/', fetch, cookies: () => '' });
      await assert.rejects(api.createSession({}), (error) => {
        assert.ok(error instanceof ApiError);
        assert.equal(error.status, status);
        assert.equal(error.code, `code_${status}`);
        assert.equal(error.detail, `Message ${status}`);
        return true;
      });
    });
  }

  test('a refusal without JSON still fails clearly', async () => {
    const { fetch } = fetchDouble([{ status: 502 }]);
    const api = createApi({ sessionsUrl: '/s/', fetch, cookies: () => '' });
    await assert.rejects(api.createSession({}), { status: 502, code: 'http_502', detail: '' });
  });

  test('network failure is status 0', async () => {
    const { fetch } = fetchDouble([new TypeError('Failed to fetch')]);
    const api = createApi({ sessionsUrl: '/s/', fetch, cookies: () => '' });
    await assert.rejects(api.createSession({}), { status: 0, code: 'network' });
  });

  test('end: JSON POST normally, text/plain beacon on unload', async () => {
    const { fetch, requests } = fetchDouble([{ status: 200, body: { ok: true } }]);
    const beacons = [];
    const api = createApi({
      sessionsUrl: '/s/',
      fetch,
      cookies: () => '',
      sendBeacon: (url, data) => beacons.push({ url, data }),
    });
    const session = { end_url: '/end/', end_key: 'k1' };
    await api.endSession(session);
    assert.deepEqual(JSON.parse(requests[0].body), { end_key: 'k1', reason: 'client_end' });
    await api.endSession(session, { beacon: true, reason: 'participant_left' });
    assert.equal(beacons[0].url, '/end/');
    assert.equal(beacons[0].data.type, 'text/plain');
    assert.deepEqual(JSON.parse(await beacons[0].data.text()), {
      end_key: 'k1',
      reason: 'participant_left',
    });
    await api.endSession(session, { reason: 'error', detail: 'livekit_unreachable' });
    assert.deepEqual(JSON.parse(requests[1].body), {
      end_key: 'k1',
      reason: 'error',
      detail: 'livekit_unreachable',
    });
  });

  test('session status: posts the end key; null when it cannot be asked', async () => {
    const { fetch, requests } = fetchDouble([
      { status: 200, body: { status: 'failed', end_reason: 'error' } },
      { status: 403, body: { error: 'invalid_end_key', detail: 'No.' } },
    ]);
    const api = createApi({ sessionsUrl: '/s/', fetch, cookies: () => '' });
    const session = { status_url: '/status/', end_key: 'k1' };
    assert.deepEqual(await api.sessionStatus(session), { status: 'failed', end_reason: 'error' });
    assert.equal(requests[0].url, '/status/');
    assert.equal(requests[0].method, 'POST');
    assert.deepEqual(JSON.parse(requests[0].body), { end_key: 'k1' });
    assert.equal(await api.sessionStatus(session), null);
    assert.equal(await api.sessionStatus({ end_key: 'k1' }), null);
  });

  test('a refusal carries its status, code, detail and the whole body', async () => {
    const answer = {
      error: 'agent_unavailable',
      detail: 'The assistant is not available right now. Please try again later.',
      agent_name: 'shop',
    };
    const { fetch } = fetchDouble([{ status: 503, body: answer }, { status: 502 }]);
    const api = createApi({ sessionsUrl: '/s/', fetch, cookies: () => '' });
    const error = await api.createSession({ persona: 'ben' }).catch((e) => e);
    assert.equal(error.name, 'ApiError');
    assert.equal(error.status, 503);
    assert.equal(error.code, 'agent_unavailable');
    assert.equal(error.detail, answer.detail);
    assert.equal(error.data.agent_name, 'shop');
    const bare = await api.createSession({ persona: 'ben' }).catch((e) => e);
    assert.equal(bare.code, 'http_502');
    assert.deepEqual(bare.data, {});
  });

  test('csrfToken reads only the csrftoken cookie', () => {
    assert.equal(csrfToken('a=1; csrftoken=xyz; b=2'), 'xyz');
    assert.equal(csrfToken('xcsrftoken=nope'), '');
  });
});

describe('labels', () => {
  test('six languages with the same keys', async () => {
    assert.deepEqual([...LANGUAGES].sort(), ['de', 'en', 'es', 'fr', 'pt', 'ru']);
    const keys = Object.keys(labelsFor('en')).sort();
    for (const lang of LANGUAGES) {
      const labels = await loadLabels(lang);
      assert.deepEqual(Object.keys(labels).sort(), keys, lang);
      for (const value of Object.values(labels)) assert.ok(value.trim(), lang);
    }
  });

  test('English is there at once; others once loaded', async () => {
    assert.equal(labelsReady('en-GB'), true);
    assert.equal(labelsReady('xx'), true, 'unknown languages use English');
    await loadLabels('de');
    assert.equal(labelsReady('de'), true);
  });

  test('chosen by the primary language subtag, English otherwise', async () => {
    for (const lang of LANGUAGES) await loadLabels(lang);
    assert.equal(labelsFor('de-AT').start, 'Gespräch starten');
    assert.equal(labelsFor('pt_BR').start, 'Iniciar conversa');
    assert.equal(labelsFor('RU').start, 'Начать разговор');
    assert.equal(labelsFor('ja').start, 'Start conversation');
    assert.equal(labelsFor('').start, 'Start conversation');
  });
});

describe('captions', () => {
  test('keeps at most the limit, dropping the oldest', () => {
    const log = new CaptionLog(2);
    for (const id of ['a', 'b', 'c']) log.apply({ streamId: id, segmentId: id, role: 'agent', delta: id });
    assert.deepEqual(
      log.list().map((c) => c.id),
      ['b', 'c'],
    );
  });

  test('an unchanged part reports no change', () => {
    const log = new CaptionLog();
    assert.ok(log.apply({ streamId: 's', segmentId: 'g', role: 'agent', delta: 'hi' }));
    assert.equal(log.apply({ streamId: 's', segmentId: 'g', role: 'agent', delta: '' }), null);
  });

  test('without a segment id, the stream is the segment', () => {
    const log = new CaptionLog();
    log.apply({ streamId: 's', role: 'agent', delta: 'hi' });
    assert.deepEqual(log.list(), [{ id: 's', role: 'agent', text: 'hi', final: false }]);
  });
});
