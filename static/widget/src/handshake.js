/**
 * What follows the click (and a live preview's connection): the room's connection, the
 * microphone, and the start handshake with the agent (see the README's protocol section).
 * A chunk of its own, fetched with the LiveKit one, so the first-load script stays small.
 * The controller module's own errors and names are passed in (`shared`), not imported, so
 * this chunk does not pull the controller out of the first-load script.
 *
 * Every flow runs under an AbortSignal (the controller's `newFlow()`): an end, a failure or
 * a newer flow aborts it, and each step it waits for (`until`) then rejects with
 * `Superseded`, which the controller swallows.
 */

/** "Method not supported": the agent has not registered its methods yet. */
const RPC_UNSUPPORTED_METHOD = 1400;
/** Backoff of the start call while the agent is not ready: 250 ms doubling to 2 s, 15 s in all. */
const START_RETRY_FIRST_MS = 250;
const START_RETRY_LONGEST_MS = 2000;
const START_RETRY_WINDOW_MS = 15000;
/** How often the session's status is asked while waiting for the agent. */
const STATUS_POLL_MS = 2000;
/** How long a failed connection waits for the microphone's answer (the visitor's to fix). */
const MIC_GRACE_MS = 1500;

const MIC_DENIED_ERRORS = new Set(['NotAllowedError', 'SecurityError', 'PermissionDeniedError']);
const MIC_MISSING_ERRORS = new Set([
  'NotFoundError',
  'DevicesNotFoundError',
  'NotReadableError',
  'TrackStartError',
  'OverconstrainedError',
  'ConstraintNotSatisfiedError',
  'AbortError',
]);

/**
 * `promise`'s outcome, unless `signal` is aborted first (or by the time it settles): then
 * `Superseded`. A cancelled flow stops at the step it was waiting for.
 */
export function until(signal, promise, { Superseded }) {
  return new Promise((resolve, reject) => {
    const abort = () => reject(new Superseded());
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort);
    Promise.resolve(promise)
      .then(
        (value) => (signal.aborted ? abort() : resolve(value)),
        (error) => (signal.aborted ? abort() : reject(error)),
      )
      .finally(() => signal.removeEventListener('abort', abort));
  });
}

/** A microphone outcome (see `askMicrophone`) as the widget's error, or null. */
function micFailure(error, { FlowError, ErrorCode }) {
  if (!error) return null;
  // getUserMedia's errors are the visitor's to fix; publishing errors are the connection's.
  const name = error.name;
  if (MIC_DENIED_ERRORS.has(name)) return new FlowError(ErrorCode.MIC_DENIED);
  if (MIC_MISSING_ERRORS.has(name)) return new FlowError(ErrorCode.MIC_UNAVAILABLE);
  return new FlowError(ErrorCode.LIVEKIT_UNREACHABLE);
}

/** Join the room with the session's token; resolves with the failure (or null). */
function connectRoom(room, session) {
  return Promise.resolve(room.connect(session.server_url, session.participant_token)).then(
    () => null,
    (error) => error || new Error('connect failed'),
  );
}

/** A failed room.connect: only the visitor's own network is theirs to fix. */
function connectFailure(controller, error, { FlowError, ErrorCode }) {
  if (!controller.isOnline()) return new FlowError(ErrorCode.OFFLINE);
  const url = controller.session ? controller.session.server_url : '';
  const status = (error && error.status) || null;
  if (error && error.refused) {
    controller.warnOnce(
      `refused:${url}`,
      `voice-widget: the LiveKit server at ${url} refused the conversation's token` +
        `${status ? ` (HTTP ${status})` : ''}: the web process's LIVEKIT_API_KEY and ` +
        'LIVEKIT_API_SECRET do not match the server\'s (see `python manage.py check` and ' +
        'VOICE_WIDGET["LIVEKIT_URL"]).',
    );
    return new FlowError(ErrorCode.LIVEKIT_REFUSED, '', { status });
  }
  controller.warnOnce(
    `unreachable:${url}`,
    `voice-widget: the LiveKit server at ${url} could not be reached` +
      `${error && error.message ? ` (${error.message})` : ''}; is it running, and is ` +
      'VOICE_WIDGET["LIVEKIT_URL"] an address browsers can reach?',
  );
  return new FlowError(ErrorCode.LIVEKIT_UNREACHABLE, '', { status });
}

/** A live preview: the room connects with the session's token, no microphone, no sound. */
export async function previewFlow(controller, signal, shared) {
  const step = (promise) => until(signal, promise, shared);
  const room = await step(controller.deps.createRoom());
  controller.attachRoom(room);
  await step(controller.openSession(signal));
  await step(room.connect(controller.session.server_url, controller.session.participant_token));
  controller.link = shared.CONNECTED;
  if (controller.state === shared.State.IDLE) controller.setState(shared.State.PREVIEW);
}

/**
 * After the click (see `Controller.start`, which did what must happen inside it): the
 * conversation's room connected with the microphone, the agent's audio playing, the agent
 * started; then the active state.
 * @param {object} entry what the click set going: `room` (a room, a promise of one, or
 *   null), `audio` (the sound unlock), `mic` (with a connected preview: the microphone,
 *   asked for in the click), `session` (the session request, when none was open), `voice`
 */
export async function startFlow(controller, signal, entry, shared) {
  const { askMicrophone } = shared;
  const step = (promise) => until(signal, promise, shared);
  const { voice, session } = entry;
  let { audio, mic } = entry;
  // A live preview still connecting is adopted: this flow waits for it.
  if (controller.link.ready) await step(controller.link.ready);
  const room = controller.room || (await step(entry.room || controller.deps.createRoom()));
  if (voice && (!audio || room !== entry.room)) {
    audio = Promise.resolve(room.startAudio()).catch(() => {});
  }
  controller.attachRoom(room);
  if (controller.link !== shared.CONNECTED) {
    // With no worker running, the session endpoint says so (503 agent_unavailable) and opens
    // nothing: "not available" shows at once, from this one request.
    await step(session || controller.openSession(signal));
    // Microphone and connection together: the pre-connect buffer records the visitor's
    // first words while the room and the agent get ready.
    mic = voice ? askMicrophone(room) : null;
    const connectError = await step(connectRoom(room, controller.session));
    if (connectError) {
      // A refused microphone is what the visitor can fix, so it is the error to show if it
      // comes within a moment. The publication itself waits for a connection that never
      // comes, so it is not awaited beyond that.
      const micError = micFailure(
        await step(Promise.race([mic, controller.delay(MIC_GRACE_MS)])),
        shared,
      );
      if (micError && micError.code !== shared.ErrorCode.LIVEKIT_UNREACHABLE) throw micError;
      throw connectFailure(controller, connectError, shared);
    }
    controller.link = shared.CONNECTED;
  } else if (voice && !mic) {
    mic = askMicrophone(room); // an adopted preview, connected meanwhile
  }
  // The agent's audio plays from now on (an agent told of the click greets at once), while
  // the microphone is still being published.
  await step(audio);
  if (voice) {
    room.playRemoteAudio();
    controller.audioBlocked = !room.canPlaybackAudio;
  }
  const micError = micFailure(await step(mic), shared);
  if (micError) throw micError;
  await startAgent(controller, signal, shared);
  activate(controller, signal, shared);
}

/**
 * The conversation is on: the active state (`then` runs once it is set), with what the agent
 * says of itself.
 */
export function activate(controller, signal, { State, Superseded, agentStateOf }, then) {
  if (signal.aborted) throw new Superseded();
  const room = controller.room;
  controller.agentState = controller.agentState || agentStateOf(room.agentAttributes());
  controller.setState(State.ACTIVE);
  if (then) then();
  if (controller.audioBlocked) controller.reportAudioBlocked();
  controller.applyAgentAttributes(room.agentAttributes());
}

/**
 * The agent ready and started: an agent told of the click (or rejoined after a reload)
 * says `voice_widget.started` with its readiness and is greeting already; any other is
 * started with `voice_widget.start`.
 */
export async function startAgent(controller, signal, shared) {
  const agent = await waitForReadyAgent(controller, signal, shared);
  if (controller.room.agentAttributes()[shared.ATTR_STARTED] !== '1') {
    await callStart(controller, signal, agent, shared);
  }
}

/**
 * The agent's identity once it has joined and set `voice_widget.protocol` (ready for
 * `voice_widget.start`). Meanwhile the session's status is polled, so an agent that could
 * not join is reported within seconds; after `agent-timeout` the wait fails.
 */
export function waitForReadyAgent(controller, signal, shared) {
  const { FlowError, Superseded, ErrorCode, ATTR_PROTOCOL } = shared;
  const readyAgent = () => {
    const agent = controller.room && controller.room.agentIdentity();
    return agent && controller.room.agentAttributes()[ATTR_PROTOCOL] ? agent : null;
  };
  const present = readyAgent();
  if (present) return Promise.resolve(present);
  if (signal.aborted) return Promise.reject(new Superseded());
  const timeoutMs = controller.deps.config().agentTimeoutMs;
  const session = controller.session;
  return new Promise((resolve, reject) => {
    let poll = null;
    const settle = () => {
      controller.clock.clearTimeout(timer);
      controller.clock.clearTimeout(poll);
      controller.agentWaiters.delete(waiter);
      signal.removeEventListener('abort', cancel);
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
    const cancel = () => waiter.reject(new Superseded());
    signal.addEventListener('abort', cancel);
    const timer = controller.clock.setTimeout(() => {
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
async function callStart(controller, signal, agent, shared) {
  const { FlowError, ErrorCode } = shared;
  let waited = 0;
  let delay = START_RETRY_FIRST_MS;
  for (;;) {
    if (await tryStart(controller, signal, agent, shared)) return;
    if (waited >= START_RETRY_WINDOW_MS) throw new FlowError(ErrorCode.START_FAILED);
    await until(signal, controller.delay(delay), shared);
    waited += delay;
    delay = Math.min(delay * 2, START_RETRY_LONGEST_MS);
  }
}

/** One start call: true when started, false when the agent is not ready yet. */
async function tryStart(controller, signal, agent, shared) {
  const { FlowError, ErrorCode, RPC_START, PROTOCOL_VERSION, RPC_TIMEOUT_MS } = shared;
  let answer;
  try {
    answer = await until(
      signal,
      controller.room.performRpc(
        agent,
        RPC_START,
        JSON.stringify({ protocol: PROTOCOL_VERSION }),
        RPC_TIMEOUT_MS,
      ),
      shared,
    );
  } catch (error) {
    if (error instanceof shared.Superseded) throw error;
    if (error && error.code === RPC_UNSUPPORTED_METHOD) return false;
    // Transport errors (timeouts, a lost connection) are not the visitor's to read.
    throw new FlowError(ErrorCode.START_FAILED);
  }
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

/** For the resume chunk: the room joined with the session's token, else the failure. */
export async function rejoin(controller, signal, room, shared) {
  const step = (promise) => until(signal, promise, shared);
  const connectError = await step(connectRoom(room, controller.session));
  if (connectError) throw connectFailure(controller, connectError, shared);
  controller.link = shared.CONNECTED;
  const micError = micFailure(await step(shared.askMicrophone(room)), shared);
  if (micError) throw micError;
}
