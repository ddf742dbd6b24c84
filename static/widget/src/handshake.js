/**
 * The start handshake with the agent (see the README's protocol section): wait for an agent
 * that says it is ready, then call `voice_widget.start` until it answers `{"ok": true}`. A
 * chunk of its own, fetched with the LiveKit one: the handshake only follows a connection.
 * The controller module's own errors and names are passed in (`shared`), not imported, so
 * this chunk does not pull the controller out of the first-load script.
 */

/** "Method not supported": the agent has not registered its methods yet. */
const RPC_UNSUPPORTED_METHOD = 1400;
/** Backoff of the start call while the agent is not ready: 250 ms doubling to 2 s, 15 s in all. */
const START_RETRY_FIRST_MS = 250;
const START_RETRY_LONGEST_MS = 2000;
const START_RETRY_WINDOW_MS = 15000;
/** How often the session's status is asked while waiting for the agent. */
const STATUS_POLL_MS = 2000;

/**
 * The agent's identity once it has joined and set `voice_widget.protocol` (ready for
 * `voice_widget.start`). Meanwhile the session's status is polled, so an agent that could
 * not join is reported within seconds; after `agent-timeout` the wait fails.
 */
export function waitForReadyAgent(controller, run, shared) {
  const { FlowError, Superseded, ErrorCode, ATTR_PROTOCOL } = shared;
  const readyAgent = () => {
    const agent = controller.room && controller.room.agentIdentity();
    return agent && controller.room.agentAttributes()[ATTR_PROTOCOL] ? agent : null;
  };
  const present = readyAgent();
  if (present) return Promise.resolve(present);
  const timeoutMs = controller.deps.config().agentTimeoutMs;
  const session = controller.session;
  return new Promise((resolve, reject) => {
    let poll = null;
    const settle = () => {
      controller.clock.clearTimeout(timer);
      controller.clock.clearTimeout(poll);
      controller.agentWaiters.delete(waiter);
    };
    const waiter = {
      check: () => {
        const agent = readyAgent();
        if (agent) waiter.resolve(agent);
      },
      resolve: (identity) => {
        settle();
        resolve(identity);
      },
      reject: (error) => {
        settle();
        reject(error);
      },
    };
    const timer = controller.clock.setTimeout(() => {
      if (run !== controller.run) return waiter.reject(new Superseded());
      // An agent that joined but never got ready could not start; none at all is away.
      const joined = controller.room && controller.room.agentIdentity();
      waiter.reject(new FlowError(joined ? ErrorCode.START_FAILED : ErrorCode.AGENT_UNAVAILABLE));
    }, timeoutMs);
    const askStatus = async () => {
      const answer = await controller.deps.api.sessionStatus(session);
      if (!controller.agentWaiters.has(waiter)) return;
      if (answer && answer.status === 'failed') {
        waiter.reject(new FlowError(ErrorCode.AGENT_FAILED));
      } else if (answer && answer.status === 'ended') {
        waiter.reject(new FlowError(ErrorCode.AGENT_FAILED, '', { endReason: answer.end_reason }));
      } else {
        poll = controller.clock.setTimeout(askStatus, STATUS_POLL_MS);
      }
    };
    poll = controller.clock.setTimeout(askStatus, STATUS_POLL_MS);
    controller.agentWaiters.add(waiter);
  });
}

/**
 * Call `voice_widget.start` until the agent says `{"ok": true}`. "Method not supported"
 * (1400) and `not_ready` mean "not yet": tried again with a backoff, within a bounded
 * window. Any other error, or no `ok`, is a failed start, never a silent success.
 */
export async function callStart(controller, run, agent, shared) {
  const { FlowError, ErrorCode } = shared;
  let waited = 0;
  let delay = START_RETRY_FIRST_MS;
  for (;;) {
    if (await tryStart(controller, run, agent, shared)) return;
    if (waited >= START_RETRY_WINDOW_MS) throw new FlowError(ErrorCode.START_FAILED);
    await controller.delay(delay);
    controller.check(run);
    waited += delay;
    delay = Math.min(delay * 2, START_RETRY_LONGEST_MS);
  }
}

/** One start call: true when started, false when the agent is not ready yet. */
async function tryStart(controller, run, agent, shared) {
  const { FlowError, ErrorCode, RPC_START, PROTOCOL_VERSION, RPC_TIMEOUT_MS } = shared;
  let answer;
  try {
    answer = await controller.room.performRpc(
      agent,
      RPC_START,
      JSON.stringify({ protocol: PROTOCOL_VERSION }),
      RPC_TIMEOUT_MS,
    );
  } catch (error) {
    controller.check(run);
    if (error && error.code === RPC_UNSUPPORTED_METHOD) return false;
    // Transport errors (timeouts, a lost connection) are not the visitor's to read.
    throw new FlowError(ErrorCode.START_FAILED);
  }
  controller.check(run);
  let parsed = null;
  try {
    parsed = JSON.parse(answer || 'null');
  } catch {
    parsed = null;
  }
  if (parsed && parsed.ok === true) return true;
  if (parsed && parsed.error === 'not_ready') return false;
  const detail = (parsed && typeof parsed.detail === 'string' && parsed.detail) || '';
  throw new FlowError(ErrorCode.START_FAILED, detail, { agentError: parsed && parsed.error });
}
