/**
 * The widget's behaviour, without DOM or LiveKit: a state machine over a small room interface.
 *
 * The element (element.js) renders what this controller says and turns clicks into calls; the
 * LiveKit adapter (livekit-room.js) implements the room interface with livekit-client. Unit
 * tests drive this controller with a room test double.
 *
 * Room interface (see livekit-room.js for the real one):
 *   connect(url, token) (rejects with `refused` true when the server refused the token),
 *   disconnect(), startAudio(), canPlaybackAudio, playRemoteAudio(),
 *   enableMicrophone(), setMicrophoneMuted(muted), agentIdentity(), agentAttributes(),
 *   performRpc(identity, method, payload, timeoutMs), registerRpcMethod(method, handler),
 *   on(event, listener) for: agent-joined, agent-left, agent-attributes, transcription,
 *   video, audio-playback, reconnecting, reconnected, disconnected.
 */

import { CaptionLog } from './captions.js';

export const State = Object.freeze({
  IDLE: 'idle',
  PREVIEW: 'preview',
  CONNECTING: 'connecting',
  ACTIVE: 'active',
  ENDED: 'ended',
  ERROR: 'error',
});

export const ErrorCode = Object.freeze({
  API: 'api_refused',
  AGENT_UNAVAILABLE: 'agent_unavailable',
  MIC_DENIED: 'mic_denied',
  MIC_UNAVAILABLE: 'mic_unavailable',
  AUDIO_BLOCKED: 'audio_blocked',
  LIVEKIT_UNREACHABLE: 'livekit_unreachable',
  LIVEKIT_REFUSED: 'livekit_refused',
  OFFLINE: 'offline',
  DISCONNECTED: 'disconnected',
  START_FAILED: 'start_failed',
  AGENT_FAILED: 'agent_failed',
  BUDGET_EXHAUSTED: 'budget_exhausted',
});

// API refusals the visitor reads in their own language instead of the server's detail.
const API_REFUSALS = new Map([['budget_exhausted', ErrorCode.BUDGET_EXHAUSTED]]);

// The failures the end endpoint records (reason `error`, the code as its detail).
const REPORTED_FAILURES = new Set([
  ErrorCode.LIVEKIT_UNREACHABLE,
  ErrorCode.LIVEKIT_REFUSED,
  ErrorCode.OFFLINE,
  ErrorCode.MIC_DENIED,
  ErrorCode.MIC_UNAVAILABLE,
  ErrorCode.DISCONNECTED,
  ErrorCode.START_FAILED,
  ErrorCode.AGENT_UNAVAILABLE,
  ErrorCode.AGENT_FAILED,
]);

export const PROTOCOL_VERSION = 1;
export const RPC_START = 'voice_widget.start';
export const RPC_END = 'voice_widget.end';
export const RPC_ENDED = 'voice_widget.ended';
export const ATTR_AGENT_STATE = 'lk.agent.state';
export const ATTR_PROTOCOL = 'voice_widget.protocol';
export const ATTR_END_REASON = 'voice_widget.end_reason';
export const ATTR_AVATAR = 'voice_widget.avatar';

const RPC_TIMEOUT_MS = 10000;
const MIC_GRACE_MS = 1500;
const RPC_UNSUPPORTED_METHOD = 1400;
// A start answered "method not supported" or "not_ready" is tried again, with a backoff
// from the first to the longest delay, for at most the retry window; then it has failed.
const START_RETRY_FIRST_MS = 250;
const START_RETRY_LONGEST_MS = 2000;
const START_RETRY_WINDOW_MS = 15000;
// While waiting for the agent, the session's status is asked this often: an agent that could
// not join has marked the conversation failed, and the visitor hears of it within seconds.
const STATUS_POLL_MS = 2000;
// How long the End button waits for the agent's answer to voice_widget.end before leaving.
const END_RPC_WAIT_MS = 1500;

const HEALTH_PATH = '/voice-widget/api/health/';

const defaultClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

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

/** getUserMedia's errors are the visitor's to fix; publishing errors are the connection's. */
function micErrorCode(error) {
  const name = error && error.name;
  if (MIC_DENIED_ERRORS.has(name)) return ErrorCode.MIC_DENIED;
  if (MIC_MISSING_ERRORS.has(name)) return ErrorCode.MIC_UNAVAILABLE;
  return ErrorCode.LIVEKIT_UNREACHABLE;
}

class FlowError extends Error {
  constructor(code, detail = '', extra = {}) {
    super(code);
    this.code = code;
    this.detail = detail;
    Object.assign(this, extra);
  }
}

/** Thrown (and swallowed) when a flow was overtaken by end(), a newer start, or an error. */
class Superseded extends Error {}

export class WidgetController {
  /**
   * @param {object} deps
   * @param {ReturnType<import('./api.js').createApi>} deps.api
   * @param {() => object | Promise<object>} deps.createRoom a room now (if the LiveKit part
   *   is loaded) or a promise of one; called inside the click for click-started flows.
   * @param {() => object} deps.config persona, previewMode, agentTimeoutMs, context,
   *   signedContext, pageUrl (read at each use, so attribute changes apply)
   * @param {(name: string, detail: object) => void} deps.emit DOM event sink
   * @param {(view: object) => void} [deps.onChange] called after every change
   * @param {{setTimeout: Function, clearTimeout: Function}} [deps.clock]
   * @param {() => void} [deps.unlockAudio] unlocks audio in the click when no room exists yet
   * @param {(message: string) => void} [deps.warn] where developers read what visitors are
   *   not told (default: console.warn), once per cause
   * @param {() => boolean} [deps.isOnline] whether the browser has a network (navigator.onLine)
   * @param {{getItem: Function, setItem: Function, removeItem: Function}} [deps.storage] the
   *   tab's sessionStorage: where a conversation waits for the page after a reload
   * @param {() => number} [deps.now] milliseconds since the epoch (default: Date.now)
   */
  constructor(deps) {
    this.deps = deps;
    this.clock = deps.clock || defaultClock;
    this.warn = deps.warn || ((message) => console.warn(message));
    this.isOnline =
      deps.isOnline || (() => typeof navigator === 'undefined' || navigator.onLine !== false);
    this.warned = new Set();
    this.state = State.IDLE;
    this.agentState = '';
    this.error = null;
    this.endReason = '';
    this.muted = false;
    this.audioBlocked = false;
    this.reconnecting = false;
    this.hasVideo = false;
    this.avatarFailed = false;
    this.captions = new CaptionLog();
    this.session = null;
    this.room = null;
    this.run = 0; // bumped by every new flow; late results of an older run are ignored
    this.previewPromise = null;
    this.previewConnected = false;
    this.previewFailed = false;
    this.agentWaiters = new Set();
    this.now = deps.now || (() => Date.now());
  }

  // ---- the view ---------------------------------------------------------------------------

  view() {
    return {
      state: this.state,
      agentState: this.agentState,
      error: this.error,
      endReason: this.endReason,
      muted: this.muted,
      audioBlocked: this.audioBlocked,
      reconnecting: this.reconnecting,
      hasVideo: this.hasVideo && !this.avatarFailed,
      avatarFailed: this.avatarFailed,
      captions: this.captions.list(),
    };
  }

  changed() {
    if (this.deps.onChange) this.deps.onChange(this.view());
  }

  setState(state, extra = {}) {
    const previous = this.state;
    this.state = state;
    if (state !== State.ACTIVE) {
      this.audioBlocked = false;
      this.reconnecting = false;
    }
    if (previous !== state || extra.force) {
      this.deps.emit('voice-widget:state', {
        state,
        previous,
        agentState: this.agentState || null,
        conversation: this.session ? this.session.conversation : null,
      });
    }
    this.changed();
  }

  // ---- preview ----------------------------------------------------------------------------

  /** The element became visible: a live preview connects now (no microphone, no sound). */
  preview() {
    if (this.deps.config().previewMode !== 'live' || this.previewFailed) return Promise.resolve();
    if (this.state !== State.IDLE || this.previewPromise) return this.previewPromise;
    const run = ++this.run;
    this.previewPromise = this.connectPreview(run)
      .catch((error) => {
        if (run === this.run) this.teardownRoom();
        // No worker runs: the session endpoint opened nothing, so the preview may try again
        // later (a worker may have started). Any other failure leaves the poster in place and
        // is not tried again on every scroll (each try would open a conversation); the click
        // shows why.
        if (!(error && error.code === ErrorCode.AGENT_UNAVAILABLE)) this.previewFailed = true;
      })
      .finally(() => {
        this.previewPromise = null;
      });
    return this.previewPromise;
  }

  async connectPreview(run) {
    const room = await this.deps.createRoom();
    this.check(run);
    this.attachRoom(room);
    await this.openSession(run);
    await room.connect(this.session.server_url, this.session.participant_token);
    this.check(run);
    this.previewConnected = true;
    if (this.state === State.IDLE) this.setState(State.PREVIEW);
  }

  // ---- start ------------------------------------------------------------------------------

  /**
   * The visitor's click. Everything before the first `await` runs inside the click, which is
   * what browsers (iOS Safari above all) require to allow sound.
   */
  start() {
    if (this.state === State.CONNECTING || this.state === State.ACTIVE) {
      return Promise.resolve();
    }
    // A live preview still connecting is adopted, not replaced: same run, same room.
    const adopting = Boolean(this.previewPromise);
    const run = adopting ? this.run : ++this.run;
    let roomNow = this.room;
    let roomLater = null;
    if (!roomNow && !adopting) {
      const created = this.deps.createRoom();
      if (created && typeof created.then === 'function') roomLater = created;
      else roomNow = created;
    }
    let audioUnlock = null;
    if (roomNow) {
      audioUnlock = Promise.resolve(roomNow.startAudio()).catch(() => {});
    } else if (this.deps.unlockAudio) {
      this.deps.unlockAudio();
    }
    this.error = null;
    this.endReason = '';
    this.agentState = '';
    this.muted = false;
    this.avatarFailed = false;
    this.captions.clear();
    this.setState(State.CONNECTING);
    return this.startFlow(run, { roomNow, roomLater, audioUnlock, adopting }).catch((error) =>
      this.failed(run, error),
    );
  }

  async startFlow(run, { roomNow, roomLater, audioUnlock, adopting }) {
    if (adopting) {
      await this.previewPromise;
      this.check(run);
    }
    let room = this.room || roomNow;
    if (!room) {
      room = await (roomLater || this.deps.createRoom());
      this.check(run);
    }
    if (!audioUnlock || room !== roomNow) {
      audioUnlock = Promise.resolve(room.startAudio()).catch(() => {});
    }
    this.attachRoom(room);
    if (!this.previewConnected) {
      // With no worker running, the session endpoint says so (503 agent_unavailable) and opens
      // nothing: "not available" shows at once, from this one request.
      await this.openSession(run);
      this.check(run);
      // Microphone and connection together: the pre-connect buffer records the visitor's
      // first words while the room and the agent get ready.
      const mic = this.enableMicrophone(room);
      const connectError = await Promise.resolve(
        room.connect(this.session.server_url, this.session.participant_token),
      ).then(
        () => null,
        (error) => error || new Error('connect failed'),
      );
      this.check(run);
      if (connectError) {
        // A refused microphone is what the visitor can fix, so it is the error to show if it
        // comes within a moment. The publication itself waits for a connection that never
        // comes, so it is not awaited beyond that.
        const micError = await Promise.race([mic, this.delay(MIC_GRACE_MS)]);
        this.check(run);
        if (micError && micError.code !== ErrorCode.LIVEKIT_UNREACHABLE) throw micError;
        throw this.connectFailure(connectError);
      }
      const micError = await mic;
      this.check(run);
      if (micError) throw micError;
      this.previewConnected = true;
    } else {
      const micError = await this.enableMicrophone(room);
      this.check(run);
      if (micError) throw micError;
    }
    await audioUnlock;
    this.check(run);
    room.playRemoteAudio();
    this.audioBlocked = !room.canPlaybackAudio;
    const agent = await this.waitForReadyAgent(run);
    await this.callStart(run, agent);
    this.agentState = this.agentState || agentStateOf(room.agentAttributes());
    this.setState(State.ACTIVE);
    if (this.audioBlocked) this.reportAudioBlocked();
    this.applyAgentAttributes(room.agentAttributes());
  }

  async enableMicrophone(room) {
    try {
      await room.enableMicrophone();
      return null;
    } catch (error) {
      return new FlowError(micErrorCode(error));
    }
  }

  async openSession(run) {
    if (this.session) return this.session;
    const config = this.deps.config();
    const body = {
      persona: config.persona,
      context: config.context || {},
      page_url: config.pageUrl,
    };
    if (config.signedContext) body.signed_context = config.signedContext;
    let data;
    try {
      data = await this.deps.api.createSession(body);
    } catch (error) {
      if (error && error.name === 'ApiError' && error.code === ErrorCode.AGENT_UNAVAILABLE) {
        this.warnNoAgent(error.data || {});
        throw new FlowError(ErrorCode.AGENT_UNAVAILABLE, '', { status: error.status });
      }
      if (error && error.name === 'ApiError') {
        const code = API_REFUSALS.get(error.code) || ErrorCode.API;
        throw new FlowError(code, error.detail, { status: error.status, api: error.code });
      }
      throw error;
    }
    this.check(run);
    this.session = data;
    this.previewConnected = false;
    return data;
  }

  /**
   * The agent's identity once it has joined and set `voice_widget.protocol` (ready for
   * `voice_widget.start`). Meanwhile the session's status is polled, so an agent that could
   * not join is reported within seconds; after `agent-timeout` the wait fails.
   */
  waitForReadyAgent(run) {
    const readyAgent = () => {
      const agent = this.room && this.room.agentIdentity();
      return agent && this.room.agentAttributes()[ATTR_PROTOCOL] ? agent : null;
    };
    const present = readyAgent();
    if (present) return Promise.resolve(present);
    const timeoutMs = this.deps.config().agentTimeoutMs;
    const session = this.session;
    return new Promise((resolve, reject) => {
      let poll = null;
      const settle = () => {
        this.clock.clearTimeout(timer);
        this.clock.clearTimeout(poll);
        this.agentWaiters.delete(waiter);
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
      const timer = this.clock.setTimeout(() => {
        if (run !== this.run) return waiter.reject(new Superseded());
        // An agent that joined but never got ready could not start; none at all is away.
        const joined = this.room && this.room.agentIdentity();
        waiter.reject(new FlowError(joined ? ErrorCode.START_FAILED : ErrorCode.AGENT_UNAVAILABLE));
      }, timeoutMs);
      const askStatus = async () => {
        const answer = await this.deps.api.sessionStatus(session);
        if (!this.agentWaiters.has(waiter)) return;
        if (answer && answer.status === 'failed') {
          waiter.reject(new FlowError(ErrorCode.AGENT_FAILED));
        } else if (answer && answer.status === 'ended') {
          waiter.reject(new FlowError(ErrorCode.AGENT_FAILED, '', { endReason: answer.end_reason }));
        } else {
          poll = this.clock.setTimeout(askStatus, STATUS_POLL_MS);
        }
      };
      poll = this.clock.setTimeout(askStatus, STATUS_POLL_MS);
      this.agentWaiters.add(waiter);
    });
  }

  /**
   * Call `voice_widget.start` until the agent says `{"ok": true}`. "Method not supported"
   * (1400) and `not_ready` mean "not yet": tried again with a backoff, within a bounded
   * window. Any other error, or no `ok`, is a failed start, never a silent success.
   */
  async callStart(run, agent) {
    let waited = 0;
    let delay = START_RETRY_FIRST_MS;
    for (;;) {
      if (await this.tryStart(run, agent)) return;
      if (waited >= START_RETRY_WINDOW_MS) throw new FlowError(ErrorCode.START_FAILED);
      await this.delay(delay);
      this.check(run);
      waited += delay;
      delay = Math.min(delay * 2, START_RETRY_LONGEST_MS);
    }
  }

  /** One start call: true when started, false when the agent is not ready yet. */
  async tryStart(run, agent) {
    let answer;
    try {
      answer = await this.room.performRpc(
        agent,
        RPC_START,
        JSON.stringify({ protocol: PROTOCOL_VERSION }),
        RPC_TIMEOUT_MS,
      );
    } catch (error) {
      this.check(run);
      if (error && error.code === RPC_UNSUPPORTED_METHOD) return false;
      // Transport errors (timeouts, a lost connection) are not the visitor's to read.
      throw new FlowError(ErrorCode.START_FAILED);
    }
    this.check(run);
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

  delay(ms) {
    return new Promise((resolve) => this.clock.setTimeout(() => resolve(null), ms));
  }

  check(run) {
    if (run !== this.run) throw new Superseded();
  }

  // ---- room events ------------------------------------------------------------------------

  attachRoom(room) {
    if (this.room === room) return;
    this.room = room;
    this.hasVideo = false;
    room.on('agent-joined', () => {
      if (room !== this.room) return;
      this.applyAgentAttributes(room.agentAttributes());
      for (const waiter of [...this.agentWaiters]) waiter.check();
    });
    room.on('agent-attributes', (attributes) => {
      if (room !== this.room) return;
      this.applyAgentAttributes(attributes);
      for (const waiter of [...this.agentWaiters]) waiter.check();
    });
    room.on('agent-left', () => {
      if (room !== this.room) return;
      if (this.state === State.ACTIVE) this.finish('agent_left');
      else if (this.state === State.PREVIEW) this.resetToIdle();
    });
    room.on('transcription', (part) => {
      if (room !== this.room || this.state !== State.ACTIVE) return;
      const caption = this.captions.apply(part);
      if (caption) {
        this.deps.emit('voice-widget:transcript', caption);
        this.changed();
      }
    });
    room.on('video', (present) => {
      if (room !== this.room) return;
      this.hasVideo = Boolean(present);
      this.changed();
    });
    room.on('audio-playback', (canPlay) => {
      if (room !== this.room || this.state !== State.ACTIVE) return;
      const blocked = !canPlay;
      if (blocked === this.audioBlocked) return;
      this.audioBlocked = blocked;
      if (blocked) this.reportAudioBlocked();
      this.changed();
    });
    room.on('reconnecting', () => {
      if (room !== this.room || this.state !== State.ACTIVE) return;
      this.reconnecting = true;
      this.changed();
    });
    room.on('reconnected', () => {
      if (room !== this.room) return;
      this.reconnecting = false;
      this.changed();
    });
    room.on('disconnected', (reason) => {
      if (room !== this.room) return;
      this.onDisconnected(reason);
    });
    room.registerRpcMethod(RPC_ENDED, async (payload) => {
      let reason = 'agent_end';
      try {
        reason = JSON.parse(payload || '{}').reason || reason;
      } catch {
        // keep the default reason
      }
      if (room === this.room) this.agentEnded(reason);
      return JSON.stringify({ ok: true });
    });
  }

  applyAgentAttributes(attributes) {
    if (!attributes) return;
    const endReason = attributes[ATTR_END_REASON];
    if (endReason) {
      this.agentEnded(endReason);
      return;
    }
    let dirty = false;
    const avatarFailed = attributes[ATTR_AVATAR] === 'failed';
    if (avatarFailed !== this.avatarFailed) {
      this.avatarFailed = avatarFailed;
      dirty = true;
    }
    const agentState = agentStateOf(attributes);
    if (agentState && agentState !== this.agentState) {
      this.agentState = agentState;
      if (this.state === State.ACTIVE) this.setState(State.ACTIVE, { force: true });
      return;
    }
    if (dirty) this.changed();
  }

  agentEnded(reason) {
    if (this.state === State.ACTIVE || this.state === State.CONNECTING) {
      this.finish(reason || 'agent_end');
    } else if (this.state === State.PREVIEW) {
      // The agent gave up on a preview nobody clicked (e.g. idle_timeout): back to the poster.
      this.resetToIdle();
    }
  }

  onDisconnected(reason) {
    if (reason === 'client') return;
    if (this.state === State.ACTIVE) {
      if (reason === 'room_closed') this.finish('room_closed');
      else this.fail(new FlowError(ErrorCode.DISCONNECTED));
    } else if (this.state === State.PREVIEW) {
      this.resetToIdle();
    } else if (this.state === State.CONNECTING && this.previewConnected) {
      // Lost after connecting (e.g. while waiting for the agent). A connection attempt that
      // fails is reported by the start flow itself, which knows about the microphone too.
      this.fail(new FlowError(ErrorCode.DISCONNECTED));
    }
  }

  // ---- visitor actions --------------------------------------------------------------------

  /** Mute or unmute the microphone. */
  async toggleMute() {
    if (this.state !== State.ACTIVE || !this.room) return;
    const muted = !this.muted;
    this.muted = muted;
    this.changed();
    try {
      await this.room.setMicrophoneMuted(muted);
    } catch {
      this.muted = !muted;
      this.changed();
    }
  }

  /** The "tap to turn on sound" button: a click, so startAudio may now play. */
  async enableAudio() {
    if (!this.room) return;
    try {
      await this.room.startAudio();
    } catch {
      // still blocked; the button stays
    }
    this.audioBlocked = !this.room.canPlaybackAudio;
    this.changed();
  }

  /** The visitor ends the conversation (also the host page's `el.end()`). */
  async end() {
    if (this.state === State.ACTIVE || this.state === State.CONNECTING) {
      const room = this.room;
      const agent = room && room.agentIdentity();
      let told = null;
      if (this.state === State.ACTIVE && agent) {
        // The room is left once the agent has the news (or after a moment): leaving first
        // would make the agent record "participant_left" for what the visitor ended.
        told = Promise.race([
          Promise.resolve(room.performRpc(agent, RPC_END, '{}', RPC_TIMEOUT_MS)).catch(() => {}),
          this.delay(END_RPC_WAIT_MS),
        ]);
      }
      await this.finish('client_end', told);
    } else if (this.state === State.PREVIEW) {
      this.resetToIdle();
    }
  }

  /** Leave the error or ended screen for the idle one (then a click starts afresh). */
  dismiss() {
    if (this.state === State.ERROR || this.state === State.ENDED) this.resetToIdle();
  }

  /**
   * The page is going. A running conversation the server lets resume is kept for this tab
   * (sessionStorage, with its end key and expiry) and only the room is left: a reload or the
   * next page of the site rejoins it, and if none comes the worker ends it after the window.
   * Otherwise (or with `resumable` false: the element was removed) a beacon ends it now.
   */
  pageHidden({ resumable = false } = {}) {
    const session = this.session;
    if (session) {
      this.session = null;
      const windowSeconds = Number(session.resume_window) || 0;
      if (resumable && this.state === State.ACTIVE && session.resume_url && windowSeconds > 0) {
        this.storeResumable(session, windowSeconds);
      } else {
        this.deps.api.endSession(session, { beacon: true, reason: 'participant_left' });
      }
    }
    this.teardownRoom();
  }

  // ---- resuming after a reload ------------------------------------------------------------

  resumeKey() {
    return `voice-widget:resume:${this.deps.config().persona || ''}`;
  }

  storeResumable(session, windowSeconds) {
    const { storage } = this.deps;
    if (!storage) return;
    const saved = {
      conversation: session.conversation,
      end_key: session.end_key,
      end_url: session.end_url,
      status_url: session.status_url,
      resume_url: session.resume_url,
      resume_window: windowSeconds,
      expires: this.now() + windowSeconds * 1000,
    };
    try {
      storage.setItem(this.resumeKey(), JSON.stringify(saved));
    } catch {
      // no storage (private mode, full): the conversation ends by the worker's window
    }
  }

  /** The stored conversation of this persona if still within its window (taken: one use). */
  takeResumable() {
    const { storage } = this.deps;
    if (!storage) return null;
    let saved = null;
    try {
      saved = JSON.parse(storage.getItem(this.resumeKey()) || 'null');
      storage.removeItem(this.resumeKey());
    } catch {
      return null;
    }
    if (!saved || !saved.resume_url || !saved.end_key || !(saved.expires > this.now())) {
      return null;
    }
    return saved;
  }

  /**
   * On load: rejoin the conversation this tab left within the resume window (same room, the
   * transcript so far, the agent) and go straight to the active state. Resolves true when a
   * conversation was resumed; a refused resume (ended, too late) leaves the widget idle.
   */
  resume() {
    if (this.state !== State.IDLE) return Promise.resolve(false);
    const saved = this.takeResumable();
    if (!saved) return Promise.resolve(false);
    const run = ++this.run;
    this.error = null;
    this.endReason = '';
    this.captions.clear();
    this.setState(State.CONNECTING);
    return this.resumeFlow(run, saved).then(
      () => true,
      (error) => {
        if (error instanceof Superseded || run !== this.run) return false;
        if (error && error.name === 'ApiError') {
          // Ended meanwhile, or too late: nothing to rejoin, a click starts afresh.
          this.session = null;
          this.teardownRoom();
          this.setState(State.IDLE);
          return false;
        }
        this.failed(run, error);
        return false;
      },
    );
  }

  async resumeFlow(run, saved) {
    const data = await this.deps.api.resumeSession(saved);
    this.check(run);
    this.session = { ...saved, ...data };
    for (const [index, turn] of (data.transcript || []).entries()) {
      this.captions.apply({
        streamId: `resumed-${index}`,
        role: turn.role === 'user' ? 'user' : 'agent',
        delta: turn.text,
        done: true,
        final: true,
      });
    }
    const room = await this.deps.createRoom();
    this.check(run);
    this.attachRoom(room);
    const connectError = await Promise.resolve(
      room.connect(this.session.server_url, this.session.participant_token),
    ).then(
      () => null,
      (error) => error || new Error('connect failed'),
    );
    this.check(run);
    if (connectError) throw this.connectFailure(connectError);
    this.previewConnected = true;
    const micError = await this.enableMicrophone(room);
    this.check(run);
    if (micError) throw micError;
    // No click on a reload: the browser may hold the sound back ("tap to turn on sound").
    await Promise.resolve(room.startAudio()).catch(() => {});
    this.check(run);
    room.playRemoteAudio();
    this.audioBlocked = !room.canPlaybackAudio;
    const agent = await this.waitForReadyAgent(run);
    // Idempotent for an agent that is talking already; starts one sent back to the room.
    await this.callStart(run, agent);
    this.agentState = this.agentState || agentStateOf(room.agentAttributes());
    this.setState(State.ACTIVE);
    this.deps.emit('voice-widget:resumed', { conversation: this.session.conversation });
    if (this.audioBlocked) this.reportAudioBlocked();
    this.applyAgentAttributes(room.agentAttributes());
  }

  // ---- endings ----------------------------------------------------------------------------

  async finish(reason, leaveAfter = null) {
    this.run++;
    const session = this.session;
    this.session = null;
    this.teardownRoom(leaveAfter);
    this.endReason = reason;
    this.setState(State.ENDED);
    this.deps.emit('voice-widget:ended', {
      reason,
      conversation: session ? session.conversation : null,
    });
    const run = this.run;
    const answer = await this.deps.api.endSession(session);
    // An ending recorded first (the agent's max_duration, say) is the one to show.
    const recorded = answer && answer.end_reason;
    if (recorded && recorded !== reason && run === this.run && this.state === State.ENDED) {
      this.endReason = recorded;
      this.changed();
    }
  }

  /** A failed room.connect: only the visitor's own network is theirs to fix. */
  connectFailure(error) {
    if (!this.isOnline()) return new FlowError(ErrorCode.OFFLINE);
    const url = this.session ? this.session.server_url : '';
    const status = (error && error.status) || null;
    if (error && error.refused) {
      this.warnOnce(
        `refused:${url}`,
        `voice-widget: the LiveKit server at ${url} refused the conversation's token` +
          `${status ? ` (HTTP ${status})` : ''}: the web process's LIVEKIT_API_KEY and ` +
          'LIVEKIT_API_SECRET do not match the server\'s (see `python manage.py check` and ' +
          'VOICE_WIDGET["LIVEKIT_URL"]).',
      );
      return new FlowError(ErrorCode.LIVEKIT_REFUSED, '', { status });
    }
    this.warnOnce(
      `unreachable:${url}`,
      `voice-widget: the LiveKit server at ${url} could not be reached` +
        `${error && error.message ? ` (${error.message})` : ''}; is it running, and is ` +
        'VOICE_WIDGET["LIVEKIT_URL"] an address browsers can reach?',
    );
    return new FlowError(ErrorCode.LIVEKIT_UNREACHABLE, '', { status });
  }

  /** For developers: the session endpoint says no worker runs, so nobody would answer. */
  warnNoAgent(answer) {
    const agent = answer.agent_name || '';
    this.warnOnce(
      `no-agent:${agent}`,
      `voice-widget: no agent worker is running for agent '${agent}' (start one with ` +
        '`python manage.py run_voice_agent dev`; see ' +
        `${this.deps.api.healthUrl || HEALTH_PATH}).`,
    );
  }

  warnOnce(key, message) {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    try {
      this.warn(message);
    } catch {
      // a console that throws is not the visitor's problem
    }
  }

  failed(run, error) {
    if (error instanceof Superseded || run !== this.run) return;
    // Ended while the widget waited (e.g. the end reached the server first): the ending.
    if (error instanceof FlowError && error.endReason) this.finish(error.endReason);
    else this.fail(error);
  }

  fail(error) {
    this.run++;
    const flow =
      error instanceof FlowError
        ? error
        : new FlowError(this.isOnline() ? ErrorCode.LIVEKIT_UNREACHABLE : ErrorCode.OFFLINE);
    const session = this.session;
    this.session = null;
    this.teardownRoom();
    this.error = {
      code: flow.code,
      detail: flow.detail || '',
      status: flow.status || null,
    };
    this.setState(State.ERROR);
    this.deps.emit('voice-widget:error', {
      code: flow.code,
      detail: flow.detail || '',
      status: flow.status || null,
      conversation: session ? session.conversation : null,
    });
    // The server records the failure and what it was, not "the visitor ended it".
    if (session) {
      const failure = REPORTED_FAILURES.has(flow.code)
        ? { reason: 'error', detail: flow.code }
        : {};
      this.deps.api.endSession(session, failure);
    }
  }

  reportAudioBlocked() {
    this.deps.emit('voice-widget:error', {
      code: ErrorCode.AUDIO_BLOCKED,
      detail: '',
      status: null,
      conversation: this.session ? this.session.conversation : null,
    });
  }

  resetToIdle() {
    this.run++;
    const session = this.session;
    this.session = null;
    this.teardownRoom();
    this.error = null;
    this.setState(State.IDLE);
    if (session) this.deps.api.endSession(session);
  }

  /** Forget the room at once (its late events are ignored); leave it now or `after` that. */
  teardownRoom(after = null) {
    for (const waiter of [...this.agentWaiters]) waiter.reject(new Superseded());
    const room = this.room;
    this.room = null;
    this.previewConnected = false;
    this.hasVideo = false;
    if (!room) return;
    const leave = () => Promise.resolve(room.disconnect()).catch(() => {});
    // Synchronous without `after`: on page unload there is no later.
    if (after) after.then(leave, leave);
    else leave();
  }
}

function agentStateOf(attributes) {
  const value = attributes && attributes[ATTR_AGENT_STATE];
  return ['initializing', 'listening', 'thinking', 'speaking'].includes(value) ? value : '';
}
