/**
 * Test doubles for the controller's collaborators: a room double (the room interface of
 * livekit-room.js, scripted by the test), an API double, and a manual clock.
 */

export const READY = Object.freeze({ 'voice_widget.protocol': '1' });

export class RoomDouble {
  constructor({ agentPresent = false, canPlaybackAudio = true } = {}) {
    this.listeners = new Map();
    this.rpcHandlers = new Map();
    this.calls = [];
    this.agent = agentPresent ? 'agent-1' : null;
    // Our agent says it is ready for voice_widget.start with this attribute.
    this.attributes = agentPresent ? { ...READY } : {};
    this.canPlaybackAudio = canPlaybackAudio;
    this.connectResult = Promise.resolve();
    this.microphoneResult = Promise.resolve();
    this.sendTextResult = Promise.resolve();
    this.rpcAnswers = new Map([['voice_widget.start', Promise.resolve('{"ok": true}')]]);
    this.connected = false;
  }

  record(name, ...args) {
    this.calls.push([name, ...args]);
  }

  callNames() {
    return this.calls.map(([name]) => name);
  }

  on(event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(listener);
  }

  emit(event, ...args) {
    for (const listener of this.listeners.get(event) || []) listener(...args);
  }

  async connect(url, token) {
    this.record('connect', url, token);
    await this.connectResult;
    this.connected = true;
  }

  async disconnect() {
    this.record('disconnect');
    this.connected = false;
  }

  startAudio() {
    this.record('startAudio');
    return Promise.resolve();
  }

  playRemoteAudio() {
    this.record('playRemoteAudio');
  }

  async enableMicrophone() {
    this.record('enableMicrophone');
    await this.microphoneResult;
  }

  async setMicrophoneMuted(muted) {
    this.record('setMicrophoneMuted', muted);
  }

  agentIdentity() {
    return this.agent;
  }

  agentAttributes() {
    return { ...this.attributes };
  }

  performRpc(identity, method, payload, timeoutMs) {
    this.record('performRpc', identity, method, payload, timeoutMs);
    const answer = this.rpcAnswers.get(method);
    if (typeof answer === 'function') return answer(payload);
    return answer || Promise.resolve('{"ok": true}');
  }

  registerRpcMethod(method, handler) {
    this.rpcHandlers.set(method, handler);
  }

  async sendText(text) {
    this.record('sendText', text);
    await this.sendTextResult;
  }

  // ---- what the agent does, scripted by tests -----------------------------------------------

  agentJoins(identity = 'agent-1', attributes = READY) {
    this.agent = identity;
    this.attributes = { ...attributes };
    this.emit('agent-joined', identity);
  }

  setAgentAttributes(attributes) {
    this.attributes = { ...this.attributes, ...attributes };
    this.emit('agent-attributes', { ...this.attributes });
  }

  agentCalls(method, payload) {
    return this.rpcHandlers.get(method)(payload, this.agent);
  }
}

export class ApiDouble {
  constructor() {
    this.requests = [];
    this.ended = [];
    this.statusAsked = [];
    this.feedback = [];
    this.feedbackAnswer = true;
    this.statusAnswer = { status: 'created', end_reason: '' };
    this.endAnswer = null;
    this.sessionAnswer = null;
    this.sessionError = null;
    this.count = 0;
  }

  async createSession(body, options = {}) {
    this.requests.push(body);
    (this.sessionOptions ||= []).push(options);
    if (this.sessionError) throw this.sessionError;
    this.count += 1;
    return (
      this.sessionAnswer || {
        conversation: `conv-${this.count}`,
        server_url: 'wss://livekit.test.invalid',
        participant_token: `token-${this.count}`,
        room_name: `room-${this.count}`,
        identity: `visitor-${this.count}`,
        expires_at: '2030-01-01T00:00:00Z',
        end_url: `/voice-widget/api/sessions/conv-${this.count}/end/`,
        status_url: `/voice-widget/api/sessions/conv-${this.count}/status/`,
        feedback_url: `/voice-widget/api/sessions/conv-${this.count}/feedback/`,
        end_key: `key-${this.count}`,
      }
    );
  }

  async endSession(session, options = {}) {
    if (!session) return null;
    this.ended.push({ conversation: session.conversation, ...options });
    return this.endAnswer;
  }

  async sendFeedback(session, feedback) {
    this.feedback.push({ conversation: session && session.conversation, ...feedback });
    return this.feedbackAnswer;
  }

  async sessionStatus(session) {
    this.statusAsked.push(session && session.conversation);
    return this.statusAnswer;
  }

  async resumeSession(saved) {
    (this.resumed ||= []).push(saved);
    if (this.resumeError) throw this.resumeError;
    return this.resumeAnswer;
  }
}

/** sessionStorage's interface over a Map. */
export class StorageDouble {
  constructor() {
    this.items = new Map();
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    this.items.set(key, String(value));
  }

  removeItem(key) {
    this.items.delete(key);
  }
}

/** A key-value store like the element's localStorage one. */
export class StoreDouble {
  constructor(entries = {}) {
    this.values = new Map(Object.entries(entries));
  }

  get(key) {
    return this.values.has(key) ? this.values.get(key) : null;
  }

  set(key, value) {
    this.values.set(key, value);
  }

  remove(key) {
    this.values.delete(key);
  }
}

/** A clock whose timers fire only when the test says time has passed. */
export class ManualClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  advance(ms) {
    this.now += ms;
    for (const [id, timer] of [...this.timers]) {
      if (timer.at <= this.now) {
        this.timers.delete(id);
        timer.fn();
      }
    }
  }

  pending() {
    return this.timers.size;
  }
}

/** Let queued promise callbacks run. */
export async function settle(rounds = 20) {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}
