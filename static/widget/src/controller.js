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
 *   sendText(text) (on the standard `lk.chat` topic),
 *   on(event, listener) for: agent-joined, agent-left, agent-attributes, transcription,
 *   video, audio-playback, reconnecting, reconnected, disconnected.
 */

import { CaptionLog } from './captions.js';
import { PageTools, RPC_PAGE_TOOL } from './page-tools.js';

export const State = Object.freeze({
  IDLE: 'idle',
  PREVIEW: 'preview',
  CONSENT: 'consent',
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
export const ATTR_STARTED = 'voice_widget.started';
export const ATTR_END_REASON = 'voice_widget.end_reason';
export const ATTR_AVATAR = 'voice_widget.avatar';

const RPC_TIMEOUT_MS = 10000;
// How long the End button waits for the agent's answer to voice_widget.end before leaving.
const END_RPC_WAIT_MS = 1500;

const HEALTH_PATH = '/voice-widget/api/health/';

/** Interaction modes (the persona's `interaction_mode`). */
export const Mode = Object.freeze({ VOICE_AND_TEXT: 'voice_text', TEXT: 'text', VOICE: 'voice' });

/** A store that forgets with the page (the element passes localStorage). */
function memoryStore() {
  const values = new Map();
  return {
    get: (key) => values.get(key) || null,
    set: (key, value) => values.set(key, value),
    remove: (key) => values.delete(key),
  };
}

const defaultClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * The room's connection, one sub-state beside `state`: none (`IDLE`), a live preview
 * connecting (`{ready}`: a click adopts it and waits for `ready`), `CONNECTED` (the
 * preview's or the conversation's), or a preview that `FAILED` (not tried again on every
 * scroll: each try would open a conversation; the click shows why).
 */
const IDLE = {};
const CONNECTED = {};
const FAILED = {};

/** The microphone, asked for now; resolves with what went wrong (or null), never rejects. */
function askMicrophone(room) {
  return Promise.resolve(room.enableMicrophone()).then(
    () => null,
    (error) => error || new Error('microphone'),
  );
}

class FlowError extends Error {
  constructor(code, detail = '', extra = {}) {
    super(code);
    this.code = code;
    this.detail = detail;
    Object.assign(this, extra);
  }
}

/** Thrown (and swallowed) when a flow was aborted by end(), a newer flow, or an error. */
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
   * @param {{get: Function, set: Function, remove: Function}} [deps.store] where the
   *   visitor's consent is remembered (default: in memory)
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
    this.flow = null; // the AbortController of the flow under way (see newFlow)
    this.link = IDLE;
    this.agentWaiters = new Set();
    this.store = deps.store || memoryStore();
    this.now = deps.now || (() => Date.now());
    this.feedback = null; // {rating, status} after a conversation the visitor may rate
    this.feedbackSession = null;
    this.chatError = false;
    this.typedCount = 0;
    this.pageTools = new PageTools({ emit: deps.emit, clock: this.clock });
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
      mode: this.mode(),
      feedback: this.state === State.ENDED ? this.feedback : null,
      chatError: this.chatError,
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

  mode() {
    const mode = this.deps.config().mode;
    return Object.values(Mode).includes(mode) ? mode : Mode.VOICE_AND_TEXT;
  }

  // ---- consent ----------------------------------------------------------------------------

  /** The persona's notice (`{text, url, version, maxAgeMs}`), or null when it has none. */
  consentNotice() {
    const notice = this.deps.config().consent;
    return notice && notice.version && notice.text ? notice : null;
  }

  consentKey(notice) {
    return `voice-widget:consent:${this.deps.config().persona}:${notice.version}`;
  }

  /** When the visitor accepted this notice (ms), if that is recent enough; else null. */
  consentAcceptedAt() {
    const notice = this.consentNotice();
    if (!notice) return null;
    const at = Number(this.store.get(this.consentKey(notice)));
    if (at > 0 && this.now() - at < notice.maxAgeMs) return at;
    if (at) this.store.remove(this.consentKey(notice));
    return null;
  }

  needsConsent() {
    return Boolean(this.consentNotice()) && this.consentAcceptedAt() === null;
  }

  /** The visitor accepted the notice (a click): remembered, then the conversation starts. */
  acceptConsent() {
    const notice = this.consentNotice();
    if (this.state !== State.CONSENT || !notice) return Promise.resolve();
    const at = this.now();
    this.store.set(this.consentKey(notice), String(at));
    this.deps.emit('voice-widget:consent', { version: notice.version, acceptedAt: at });
    return this.start();
  }

  declineConsent() {
    if (this.state === State.CONSENT) this.setState(State.IDLE);
  }

  // ---- preview ----------------------------------------------------------------------------

  /** The element became visible: a live preview connects now (no microphone, no sound). */
  preview() {
    // A preview opens a conversation, which a notice not yet accepted must come before.
    const config = this.deps.config();
    if (config.previewMode !== 'live' || this.link === FAILED || this.needsConsent()) {
      return Promise.resolve();
    }
    if (this.state !== State.IDLE || this.link !== IDLE) return this.link.ready;
    const signal = this.newFlow();
    const ready = this.flowChunk()
      .then((flows) => flows.previewFlow(this, signal, SHARED))
      .catch((error) => {
        if (signal.aborted) return;
        this.teardownRoom();
        // No worker runs: the session endpoint opened nothing, so the preview may try again
        // later (a worker may have started). Any other failure is not tried again.
        if (!(error && error.code === ErrorCode.AGENT_UNAVAILABLE)) this.link = FAILED;
      });
    this.link = { ready };
    return ready;
  }

  // ---- start ------------------------------------------------------------------------------

  /**
   * The visitor's click. What browsers (iOS Safari above all) allow only inside the click
   * happens here, before anything is awaited: sound unlocked, and with a connected preview
   * the microphone asked for. With no conversation open yet, its request goes now too,
   * saying the visitor clicked: the agent greets as soon as it joins. The rest follows in
   * the flow chunk (handshake.js).
   */
  start() {
    if (this.state === State.CONNECTING || this.state === State.ACTIVE) {
      return Promise.resolve();
    }
    if (this.needsConsent()) {
      this.feedback = null;
      this.setState(State.CONSENT);
      return Promise.resolve();
    }
    const voice = this.mode() !== Mode.TEXT;
    const link = this.link;
    // A live preview still connecting is adopted, not replaced: same flow, same room.
    const signal = link.ready ? this.flow.signal : this.newFlow();
    const room = this.room || (link.ready ? null : this.deps.createRoom());
    const roomNow = room && typeof room.then !== 'function' ? room : null;
    let audio = null;
    if (roomNow && voice) audio = Promise.resolve(roomNow.startAudio()).catch(() => {});
    else if (voice && this.deps.unlockAudio) this.deps.unlockAudio();
    const mic = voice && link === CONNECTED ? askMicrophone(roomNow) : null;
    let session = null;
    if (!this.session && (link === IDLE || link === FAILED)) {
      session = this.openSession(signal, true);
      session.catch(() => {}); // awaited by the flow
    }
    this.error = null;
    this.endReason = '';
    this.agentState = '';
    this.muted = false;
    this.avatarFailed = false;
    this.feedback = null;
    this.feedbackSession = null;
    this.chatError = false;
    this.captions.clear();
    this.setState(State.CONNECTING);
    return this.flowChunk()
      .then((flows) => flows.startFlow(this, signal, { room, audio, mic, session, voice }, SHARED))
      .catch((error) => this.failed(signal, error));
  }

  /** The flows (handshake.js): a chunk fetched with the LiveKit one. */
  flowChunk() {
    return import('./handshake.js');
  }

  /** A flow starts (preview, start or resume): the one under way is aborted. */
  newFlow() {
    this.abortFlow();
    this.flow = new AbortController();
    return this.flow.signal;
  }

  abortFlow() {
    if (this.flow) this.flow.abort();
    this.flow = null;
  }

  /** The conversation's session (the open one, or a new one; `clicked`: after the click). */
  async openSession(signal, clicked = false) {
    if (this.session) return this.session;
    const config = this.deps.config();
    const body = {
      persona: config.persona,
      context: config.context || {},
      page_url: config.pageUrl,
    };
    if (config.signedContext) body.signed_context = config.signedContext;
    const notice = this.consentNotice();
    const acceptedAt = this.consentAcceptedAt();
    if (notice && acceptedAt) {
      body.consent = { version: notice.version, accepted_at: new Date(acceptedAt).toISOString() };
    }
    let data;
    try {
      data = await this.deps.api.createSession(body, { clicked });
    } catch (error) {
      if (error && error.name === 'ApiError' && error.code === ErrorCode.AGENT_UNAVAILABLE) {
        this.warnNoAgent(error.data || {});
        throw new FlowError(ErrorCode.AGENT_UNAVAILABLE, '', { status: error.status });
      }
      // The server wants the notice (again): the next click shows it.
      if (notice && error && error.code === 'consent_required') {
        this.store.remove(this.consentKey(notice));
      }
      if (error && error.name === 'ApiError') {
        const code = API_REFUSALS.get(error.code) || ErrorCode.API;
        throw new FlowError(code, error.detail, { status: error.status, api: error.code });
      }
      throw error;
    }
    if (signal.aborted) {
      // Ended meanwhile: nobody will join this conversation, so it is ended at once.
      this.deps.api.endSession(data);
      throw new Superseded();
    }
    this.session = data;
    return data;
  }

  delay(ms) {
    return new Promise((resolve) => this.clock.setTimeout(() => resolve(null), ms));
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
      // Also while connecting: an agent told of the click greets before the widget is active.
      if (room !== this.room || ![State.ACTIVE, State.CONNECTING].includes(this.state)) return;
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
    // Page tools answer the agent only, never another participant of the room.
    room.registerRpcMethod(RPC_PAGE_TOOL, (payload, caller) =>
      room === this.room && caller === room.agentIdentity()
        ? this.pageTools.call(payload)
        : JSON.stringify({ ok: false, error: 'not_allowed', detail: 'Only the agent may call.' }),
    );
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
    } else if (this.state === State.CONNECTING && this.link === CONNECTED) {
      // Lost after connecting (e.g. while waiting for the agent). A connection attempt that
      // fails is reported by the start flow itself, which knows about the microphone too.
      this.fail(new FlowError(ErrorCode.DISCONNECTED));
    }
  }

  // ---- visitor actions --------------------------------------------------------------------

  /**
   * Send what the visitor typed (`lk.chat`); it shows in the captions at once, marked typed.
   * Resolves true once sent, false when it could not be (then the caption is taken back).
   */
  async sendText(text) {
    const message = String(text || '').trim();
    if (this.state !== State.ACTIVE || !this.room || this.mode() === Mode.VOICE || !message) {
      return false;
    }
    const room = this.room;
    const caption = {
      id: `typed-${++this.typedCount}`,
      role: 'user',
      text: message,
      final: true,
      typed: true,
    };
    this.captions.add(caption);
    this.chatError = false;
    this.changed();
    try {
      await room.sendText(message);
    } catch {
      this.captions.remove(caption.id);
      this.chatError = room === this.room;
      this.changed();
      return false;
    }
    this.deps.emit('voice-widget:transcript', caption);
    return true;
  }

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

  /** Leave the error, ended or consent screen for the idle one (a click starts afresh). */
  dismiss() {
    if ([State.ERROR, State.ENDED, State.CONSENT].includes(this.state)) this.resetToIdle();
  }

  /**
   * The page is going. A running conversation the server lets resume is kept for this tab
   * (sessionStorage, with its end key and expiry) and only the room is left: a reload or the
   * next page of the site rejoins it, and if none comes the worker ends it after the window.
   * Otherwise (or with `resumable` false: the element was removed) a beacon ends it now.
   */
  pageHidden({ resumable = false } = {}) {
    this.abortFlow();
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

  /**
   * On load: rejoin the conversation this tab left within the resume window (same room, the
   * transcript so far, the agent) and go straight to the active state. Resolves true when a
   * conversation was resumed; a refused resume (ended, too late) leaves the widget idle. The
   * code lives in a chunk fetched only when this tab holds such a conversation.
   */
  resume() {
    let stored = null;
    try {
      stored = this.deps.storage && this.deps.storage.getItem(this.resumeKey());
    } catch {
      stored = null;
    }
    if (this.state !== State.IDLE || !stored) return Promise.resolve(false);
    return import('./resume-flow.js').then(({ resume }) =>
      resume(this, SHARED),
    );
  }

  // ---- endings ----------------------------------------------------------------------------

  async finish(reason, leaveAfter = null) {
    const ending = this.newFlow(); // aborted by whatever comes next
    const session = this.session;
    // Only a conversation that took place is rated.
    const rateable = this.state === State.ACTIVE && session && session.feedback_url;
    this.feedback = rateable && this.deps.config().feedback ? { rating: '', status: '' } : null;
    this.feedbackSession = this.feedback ? session : null;
    this.session = null;
    this.teardownRoom(leaveAfter);
    this.endReason = reason;
    this.setState(State.ENDED);
    this.deps.emit('voice-widget:ended', {
      reason,
      conversation: session ? session.conversation : null,
    });
    const answer = await this.deps.api.endSession(session);
    // An ending recorded first (the agent's max_duration, say) is the one to show.
    const recorded = answer && answer.end_reason;
    if (recorded && recorded !== reason && !ending.aborted && this.state === State.ENDED) {
      this.endReason = recorded;
      this.changed();
    }
  }

  /**
   * The visitor's rating after a conversation (`up` or `down`, with an optional comment);
   * a later call replaces it. Resolves true when the server has it.
   */
  async rate(rating, comment = '') {
    const feedback = this.feedback;
    const session = this.feedbackSession;
    if (this.state !== State.ENDED || !feedback || !['up', 'down'].includes(rating)) return false;
    this.feedback = { rating, status: 'sending', comment: Boolean(comment) };
    this.changed();
    const ok = await this.deps.api.sendFeedback(session, { rating, comment });
    if (this.feedback && this.feedbackSession === session) {
      this.feedback = { ...this.feedback, status: ok ? 'sent' : 'failed' };
      this.changed();
    }
    if (ok) {
      this.deps.emit('voice-widget:feedback', {
        rating,
        comment,
        conversation: session.conversation,
      });
    }
    return ok;
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

  failed(signal, error) {
    if (error instanceof Superseded || signal.aborted) return;
    // Ended while the widget waited (e.g. the end reached the server first): the ending.
    if (error instanceof FlowError && error.endReason) this.finish(error.endReason);
    else this.fail(error);
  }

  fail(error) {
    this.abortFlow();
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
    this.abortFlow();
    const session = this.session;
    this.session = null;
    this.teardownRoom();
    this.error = null;
    this.feedback = null;
    this.feedbackSession = null;
    this.setState(State.IDLE);
    if (session) this.deps.api.endSession(session);
  }

  /** Forget the room at once (its late events are ignored); leave it now or `after` that. */
  teardownRoom(after = null) {
    const room = this.room;
    this.room = null;
    if (this.link !== FAILED) this.link = IDLE;
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

/** What handshake.js and resume-flow.js need from this module (passed, not imported). */
const SHARED = {
  State,
  ErrorCode,
  FlowError,
  Superseded,
  agentStateOf,
  askMicrophone,
  CONNECTED,
  ATTR_PROTOCOL,
  ATTR_STARTED,
  RPC_START,
  PROTOCOL_VERSION,
  RPC_TIMEOUT_MS,
};
