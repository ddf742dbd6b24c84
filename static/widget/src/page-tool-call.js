/**
 * Answering the agent's `voice_widget.page_tool` call: `{name, arguments, timeout_ms}` in,
 * `{ok: true, result}` or `{ok: false, error, detail}` out, the detail written for the model
 * to read. Loaded at the first call, so pages that never use tools do not pay for it.
 */

const DEFAULT_TIMEOUT_MS = 8000;
// LiveKit refuses RPC answers over 15 KiB; a shorter, readable error is better for the model.
const MAX_ANSWER_CHARS = 14000;

const failure = (error, detail) => JSON.stringify({ ok: false, error, detail });

/** The tool's result as a promise, or null when neither a handler nor a listener has it. */
function begin(pageTools, name, args) {
  const entry = pageTools.tools.get(name);
  if (entry) return new Promise((resolve) => resolve(entry.handler(args)));
  // No handler: a `voice-widget:tool` listener may answer with detail.respond(value).
  let responded = null;
  pageTools.ask(name, args, (value) => {
    if (!responded) responded = Promise.resolve(value);
  });
  return responded;
}

/** @param {import('./page-tools.js').PageTools} pageTools */
export async function answerPageTool(pageTools, payload) {
  let request;
  try {
    request = JSON.parse(payload || '{}');
  } catch {
    request = null;
  }
  const name = request && typeof request.name === 'string' ? request.name : '';
  if (!name) return failure('bad_request', 'The call named no page tool.');
  const args = typeof request.arguments === 'object' ? request.arguments || {} : {};
  const pending = begin(pageTools, name, args);
  if (!pending) return failure('unknown_tool', `This page has no tool ${name}.`);
  const clock = pageTools.clock;
  let timer;
  const timeout = new Promise((resolve) => {
    timer = clock.setTimeout(
      () => resolve(failure('timeout', `The page did not answer ${name} in time.`)),
      Number(request.timeout_ms) || DEFAULT_TIMEOUT_MS,
    );
  });
  const answer = pending.then(
    (result) => {
      try {
        const answer = JSON.stringify({ ok: true, result: result === undefined ? null : result });
        if (answer.length <= MAX_ANSWER_CHARS) return answer;
        return failure('too_large', `${name} answered more than the agent can read.`);
      } catch {
        return failure('failed', `${name} answered something that is not JSON.`);
      }
    },
    (error) => {
      const message = String((error && error.message) || error || '').slice(0, 200);
      return failure('failed', `${name} failed on the page${message ? `: ${message}` : '.'}`);
    },
  );
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}
