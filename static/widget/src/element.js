/**
 * <voice-widget>: the custom element. It renders what the controller says inside its own
 * shadow root and turns the visitor's clicks into controller calls. LiveKit is loaded only
 * when the widget is about to connect (see loadRoomModule).
 */

import { createApi } from './api.js';
import { Mode, State, WidgetController } from './controller.js';
import { labelsFor, labelsReady, loadLabels } from './i18n.js';
import CSS from './widget.css';

const DEFAULT_AGENT_TIMEOUT_S = 20;

const ICONS = {
  mic: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3"/></svg>',
  micOff:
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M9 9v2a3 3 0 0 0 5.1 2.1M15 10V6a3 3 0 0 0-5.7-1.3M5 11a7 7 0 0 0 11.4 5.4M19 11a7 7 0 0 1-.6 2.8M12 18v3M3 3l18 18"/></svg>',
  end: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 14.5c5-4.7 13-4.7 18 0l-2.4 2.6-3.3-1.3v-2.4a9.5 9.5 0 0 0-6.6 0v2.4l-3.3 1.3z"/></svg>',
  close: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>',
  sound:
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 10v4h4l5 4V6L8 10zM16.5 8.5a5 5 0 0 1 0 7M19 6a8.5 8.5 0 0 1 0 12"/></svg>',
};

const TEMPLATE = `
<div class="vw" part="widget">
  <button class="launcher" type="button" aria-expanded="false" hidden>
    <span class="face" aria-hidden="true"></span>
    <span class="launcher-text"><small></small><strong></strong></span>
  </button>
  <section class="card" part="card" tabindex="-1">
    <header class="head">
      <span class="face" aria-hidden="true"></span>
      <span class="who">
        <span class="name"></span>
        <span class="status" role="status"><span class="dot" aria-hidden="true"></span><span class="bars" aria-hidden="true" hidden><i></i><i></i><i></i><i></i></span><span class="status-text"></span></span>
      </span>
      <button class="icon-button close" type="button" hidden>${ICONS.close}</button>
    </header>
    <div class="stage">
      <div class="tile"><span class="avatar" aria-hidden="true"></span></div>
      <img class="poster" alt="" hidden>
      <video class="idle" muted loop autoplay playsinline disablepictureinpicture hidden></video>
      <video class="live" muted autoplay playsinline disablepictureinpicture hidden></video>
      <div class="overlay">
        <button class="primary start" type="button">${ICONS.mic}<span></span></button>
      </div>
    </div>
    <div class="body">
      <p class="welcome"></p>
      <div class="message" role="alert" hidden><p class="message-text"></p><p class="message-help"></p></div>
      <p class="note" hidden></p>
      <div class="captions" aria-live="polite" aria-relevant="additions text"></div>
      <button class="secondary sound" type="button" hidden>${ICONS.sound}<span></span></button>
      <div class="controls">
        <button class="secondary round mute" type="button" aria-pressed="false" hidden>${ICONS.mic}</button>
        <button class="secondary danger end" type="button" hidden>${ICONS.end}<span></span></button>
        <button class="primary again" type="button" hidden><span></span></button>
      </div>
    </div>
  </section>
  <div class="audio"></div>
</div>`;

const sheets = new Map();

/**
 * Adds a stylesheet to a widget's shadow root (the widget's own, or a lazy chunk's), one
 * constructed sheet per stylesheet shared by every widget on the page: CSP's style-src does
 * not apply to it, so a strict policy without 'unsafe-inline' works. Older browsers get <style>.
 */
function adoptStyles(root, css) {
  try {
    let sheet = sheets.get(css);
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      sheets.set(css, sheet);
    }
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  } catch {
    const style = document.createElement('style');
    style.textContent = css;
    root.append(style);
  }
}

/** A chunk's loader: imported once per page, tried again after a failure. */
function lazy(load) {
  let promise = null;
  return () => {
    if (!promise) {
      promise = load();
      promise.catch(() => {
        promise = null;
      });
    }
    return promise;
  };
}

/** The consent notice and feedback form (a chunk: most conversations need neither). */
const loadPanels = lazy(() => import('./panels.js'));

/** The expand control and the expanded and full-page styles (a chunk: inline needs neither). */
const loadLayout = lazy(() => import('./layout.js'));

let roomModule = null;

/** Loads livekit-client (a separate chunk) once per page. */
const loadRoomModule = lazy(() => {
  import('./handshake.js').catch(() => {}); // the start handshake follows the connection
  return import('./livekit-room.js').then((module) => (roomModule = module));
});

/** The tab's sessionStorage, or null where the page may not use it (sandboxed, disabled). */
function tabStorage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

function parseJsonObject(text) {
  if (!text) return {};
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

/** Black or white, whichever reads better on `hex`. */
function textOn(hex) {
  const value = hex.length === 4 ? hex.replace(/\w/g, (c) => c + c) : hex;
  const channel = (i) => {
    const c = parseInt(value.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) ? '#111111' : '#ffffff';
}

/** The label for each error code the visitor cannot act on beyond trying again. */
const ERROR_LABELS = {
  agent_unavailable: 'agentUnavailable',
  // The persona's daily budget is spent: the server's detail is for the site's staff.
  budget_exhausted: 'budgetExhausted',
  mic_unavailable: 'micUnavailable',
  offline: 'unreachable',
  // The server's setup or the LiveKit server: nothing the visitor can fix.
  livekit_unreachable: 'agentUnavailable',
  livekit_refused: 'agentUnavailable',
  disconnected: 'disconnected',
  agent_failed: 'agentFailed',
};

export class VoiceWidgetElement extends HTMLElement {
  static get observedAttributes() {
    return [
      'persona',
      'preview',
      'poster',
      'idle-clip',
      'position',
      'theme',
      'accent',
      'label',
      'welcome',
      'lang',
      'agent-name',
      'mode',
      'feedback',
      'consent-text',
      'consent-url',
    ];
  }

  constructor() {
    super();
    this.contextOverride = null;
    this.open = false;
    this.seen = false;
    this.lastView = null;
    const root = this.attachShadow({ mode: 'open' });
    const holder = document.createElement('div');
    holder.innerHTML = TEMPLATE;
    root.append(...holder.childNodes);
    adoptStyles(root, CSS);
    const $ = (selector) => root.querySelector(selector);
    this.ui = {
      root: $('.vw'),
      launcher: $('.launcher'),
      card: $('.card'),
      faces: root.querySelectorAll('.face'),
      name: $('.name'),
      bars: $('.bars'),
      statusText: $('.status-text'),
      close: $('.close'),
      stage: $('.stage'),
      tile: $('.tile'),
      avatar: $('.tile .avatar'),
      poster: $('img.poster'),
      idle: $('video.idle'),
      live: $('video.live'),
      overlay: $('.overlay'),
      start: $('.start'),
      welcome: $('.welcome'),
      message: $('.message'),
      messageText: $('.message-text'),
      messageHelp: $('.message-help'),
      note: $('.note'),
      captions: $('.captions'),
      sound: $('.sound'),
      mute: $('.mute'),
      end: $('.end'),
      again: $('.again'),
      audio: $('.audio'),
    };
    // An idle clip that cannot play gives way to the poster (or the tile).
    this.ui.idle.addEventListener('error', () => {
      this.idleClipFailed = this.ui.idle.getAttribute('src');
      this.render(this.controller.view());
    });
    // Playsinline and muted as properties too: iOS Safari checks the properties.
    for (const video of [this.ui.idle, this.ui.live]) {
      video.muted = true;
      video.playsInline = true;
    }

    const element = this;
    this.controller = new WidgetController({
      // Built at each use, so the endpoint attributes may change after the element connects.
      get api() {
        return element.api();
      },
      createRoom: () => this.createRoom(),
      config: () => this.config(),
      emit: (name, detail) =>
        this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true })),
      onChange: (view) => this.render(view),
      unlockAudio: () => this.unlockAudio(),
      store: localStore,
      storage: tabStorage(),
    });

    const ui = this.ui;
    ui.start.addEventListener('click', () => this.start());
    ui.again.addEventListener('click', () => this.start());
    ui.end.addEventListener('click', () => this.end());
    ui.mute.addEventListener('click', () => this.controller.toggleMute());
    ui.sound.addEventListener('click', () => this.controller.enableAudio());

    ui.close.addEventListener('click', () => this.setOpen(false, { focusLauncher: true }));
    ui.launcher.addEventListener('click', () => {
      // The launcher hides as the panel opens: focus goes into the panel, not to <body>.
      this.setOpen(true, { focusPanel: true });
      const state = this.controller.state;
      if (state === State.IDLE || state === State.PREVIEW) this.start();
      else this.focusFirst();
    });
    ui.root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.isFloating && this.open) {
        this.setOpen(false, { focusLauncher: true });
      }
    });
    // Intent to talk (hover, focus, touch): fetch the chunks so the click finds them ready.
    for (const type of ['pointerenter', 'focusin', 'touchstart']) {
      // (Each loader handles its own failure: the click tries again.)
      const prefetch = () => loadRoomModule() && loadPanels() && this.isFloating && loadLayout();
      ui.root.addEventListener(type, prefetch, { passive: true, once: true });
    }
    // pagehide may be a reload or the next page of the site: the conversation may resume.
    this.onPageHide = () => this.controller.pageHidden({ resumable: true });
  }

  // ---- host-page API ----------------------------------------------------------------------

  /** Start a conversation (must be called from a click or key handler to allow sound). */
  start() {
    if (this.isFloating) this.setOpen(true);
    return this.controller.start();
  }

  /** End the conversation, if one is running. */
  end() {
    return this.controller.end();
  }

  /** Send a typed message to the agent (in a conversation that allows typing). */
  sendText(text) {
    return this.controller.sendText(text);
  }

  /** Page facts for the next conversation (unverified: the agent treats them as visitor data). */
  setContext(context) {
    this.contextOverride = context && typeof context === 'object' ? { ...context } : {};
  }

  /**
   * Lets the agent call `handler(arguments)` (its result, or a promise of it, is what the
   * model reads) when the persona declares a page tool of this name. Returns an unregister
   * function. `spec` ({description, parameters}) documents the tool; the persona's
   * declaration is what the model sees.
   */
  registerTool(name, spec, handler) {
    return this.controller.pageTools.register(name, spec, handler);
  }

  unregisterTool(name) {
    this.controller.pageTools.unregister(name);
  }

  get state() {
    return this.controller.state;
  }

  // ---- lifecycle --------------------------------------------------------------------------

  connectedCallback() {
    this.open = !this.isFloating || this.previewMode === 'live';
    window.addEventListener('pagehide', this.onPageHide);
    this.render(this.controller.view());
    // A conversation this tab left moments ago (a reload, another page) is rejoined.
    this.controller.resume().then((resumed) => {
      if (resumed && this.isFloating) this.setOpen(true);
    });
    if (this.previewMode === 'live' && 'IntersectionObserver' in window) {
      this.observer = new IntersectionObserver(
        (entries) => {
          if (entries.some((entry) => entry.isIntersecting)) this.controller.preview();
        },
        { threshold: 0.25 },
      );
      this.observer.observe(this.ui.card);
    }
  }

  disconnectedCallback() {
    window.removeEventListener('pagehide', this.onPageHide);
    if (this.observer) this.observer.disconnect();
    this.controller.pageHidden();
  }

  attributeChangedCallback() {
    if (this.isConnected) this.render(this.controller.view());
  }

  // ---- configuration ----------------------------------------------------------------------

  get previewMode() {
    const value = this.getAttribute('preview');
    return ['live', 'poster', 'none'].includes(value) ? value : 'none';
  }

  /** `floating`, `fullpage`, or `inline` (the default). */
  get position() {
    const value = this.getAttribute('position');
    return value === 'floating' || value === 'fullpage' ? value : 'inline';
  }

  get isFloating() {
    return this.position === 'floating';
  }

  get agentName() {
    return this.getAttribute('agent-name') || this.getAttribute('persona') || '';
  }

  startLabel(t) {
    return this.getAttribute('label') || t.start;
  }

  api() {
    return createApi({
      sessionsUrl: this.getAttribute('endpoint') || '',
      healthUrl: this.healthUrl(),
      csrfToken: this.getAttribute('csrf-token') || '',
      sendBeacon: (url, data) => navigator.sendBeacon(url, data),
    });
  }

  healthUrl() {
    const explicit = this.getAttribute('health-endpoint');
    if (explicit) return explicit;
    const endpoint = this.getAttribute('endpoint');
    if (!endpoint) return '';
    try {
      return new URL('../health/', new URL(endpoint, document.baseURI)).href;
    } catch {
      return '';
    }
  }

  config() {
    const timeout = Number.parseFloat(this.getAttribute('agent-timeout'));
    return {
      persona: this.getAttribute('persona') || '',
      previewMode: this.previewMode,
      agentTimeoutMs: (timeout > 0 ? timeout : DEFAULT_AGENT_TIMEOUT_S) * 1000,
      context: this.contextOverride || parseJsonObject(this.getAttribute('context')),
      signedContext: this.getAttribute('signed-context') || '',
      pageUrl: window.location.href,
      mode: this.getAttribute('mode') || Mode.VOICE_AND_TEXT,
      feedback: this.hasAttribute('feedback') && this.getAttribute('feedback') !== 'off',
      consent: {
        text: this.getAttribute('consent-text') || '',
        url: this.getAttribute('consent-url') || '',
        version: this.getAttribute('consent-version') || '',
        maxAgeMs: (Number(this.getAttribute('consent-max-age')) || 2592000) * 1000,
      },
    };
  }

  get language() {
    return this.getAttribute('lang') || document.documentElement.lang || 'en';
  }

  get labels() {
    return labelsFor(this.language);
  }

  createRoom() {
    const elements = { videoElement: this.ui.live, audioContainer: this.ui.audio };
    if (roomModule) return roomModule.createRoom(elements);
    return loadRoomModule().then((module) => module.createRoom(elements));
  }

  /** Without a room yet, play silence in the click so the page may play sound later. */
  unlockAudio() {
    try {
      const AudioContextClass = window.AudioContext || window.webkitAudioContext;
      if (!AudioContextClass) return;
      const context = new AudioContextClass();
      const source = context.createBufferSource();
      source.buffer = context.createBuffer(1, 1, 22050);
      source.connect(context.destination);
      source.start(0);
      context.resume().finally(() => setTimeout(() => context.close(), 1000));
    } catch {
      // nothing to unlock
    }
  }

  setOpen(open, { focusLauncher = false, focusPanel = false } = {}) {
    if (!this.isFloating) return;
    this.open = open;
    this.render(this.controller.view());
    if (focusLauncher) this.ui.launcher.focus();
    if (focusPanel) this.ui.card.focus();
  }

  // ---- rendering --------------------------------------------------------------------------

  render(view) {
    if (!this.readyToDraw()) return;
    const t = this.labels;
    const previousView = this.lastView;
    this.lastView = view;
    const focusWasInside = Boolean(this.shadowRoot.activeElement);
    renderFrame(this, view);
    renderIdentity(this, t);
    renderLauncher(this, view, t);
    renderStage(this, view);
    renderPanels(this, view, t);
    renderMessages(this, view, t);
    renderControls(this, view, t);
    restoreFocus(this, view, previousView, focusWasInside);
  }

  /**
   * Drawn once its language's labels are here (a small chunk, for languages but English) and,
   * full page, its layout (a chunk too; without it, it is drawn as inline).
   */
  readyToDraw() {
    const ui = this.ui;
    const language = this.language;
    const position = this.position;
    if (position === 'fullpage' || (position === 'floating' && this.open)) this.mountLayout();
    const labelsMissing = !labelsReady(language);
    const layoutMissing = position === 'fullpage' && !this.layout && !this.layoutFailed;
    ui.root.hidden = labelsMissing || layoutMissing;
    if (labelsMissing) {
      loadLabels(language)
        .catch(() => {})
        .then(() => {
          if (language === this.language) ui.root.hidden = false;
          this.render(this.controller.view());
        });
    }
    return !ui.root.hidden;
  }

  /** Adds the layout chunk's parts (the expand control) once it is here. */
  mountLayout() {
    if (this.layout || this.layoutLoading || this.layoutFailed) return;
    this.layoutLoading = loadLayout()
      .then(
        (module) => {
          adoptStyles(this.shadowRoot, module.CSS);
          this.layout = module.mountLayout(this.shadowRoot, tabStorage());
        },
        () => {
          this.layoutFailed = true;
        },
      )
      .then(() => this.render(this.controller.view()));
  }

  statusLabel(view, t) {
    switch (view.state) {
      case State.CONNECTING:
        return t.connecting;
      case State.CONSENT:
        return t.poweredBy;
      case State.ACTIVE:
        if (view.reconnecting) return t.reconnecting;
        if (view.muted) return t.muted;
        return t[view.agentState] || t.initializing;
      case State.ENDED:
        return t.endedShort;
      case State.ERROR:
        return t.offline; // the alert below says what went wrong
      default:
        return t.poweredBy;
    }
  }

  errorText(error, t) {
    switch (error.code) {
      case 'api_refused':
        if (error.detail) return [error.detail, ''];
        return [t.apiRefused, error.status ? '' : t.apiUnreachable];
      case 'mic_denied':
        return [t.micDenied, t.micHowTo];
      case 'start_failed':
        return [error.detail || t.startFailed, ''];
      default:
        return [t[ERROR_LABELS[error.code]] || t.apiRefused, ''];
    }
  }

  endedText(reason, t) {
    if (reason === 'max_duration') return t.endedTimeout;
    if (reason === 'idle_timeout') return t.endedIdle;
    if (reason === 'error' || reason === 'worker_shutdown') return t.endedError;
    return t.ended;
  }

  focusStillVisible() {
    const active = this.shadowRoot.activeElement;
    // getClientRects, not offsetParent: the floating panel is `position: fixed`.
    return Boolean(active && active.getClientRects().length && !active.closest('[hidden]'));
  }

  focusFirst() {
    const ui = this.ui;
    const { accept, input } = this.panels || {};
    const order = [ui.start, accept, ui.again, ui.mute, input, ui.end, ui.launcher];
    const target = order.find((button) => button && !button.closest('[hidden]'));
    if (target) target.focus();
  }
}

/** The root's data attributes (what the CSS keys on) and the accent colour. */
function renderFrame(el, view) {
  const root = el.ui.root;
  const theme = el.getAttribute('theme');
  root.dataset.theme = ['light', 'dark'].includes(theme) ? theme : 'auto';
  root.dataset.position = el.position;
  root.dataset.preview = el.previewMode;
  root.dataset.state = view.state;
  root.dataset.agent = view.state === State.ACTIVE ? view.agentState || 'initializing' : '';
  root.toggleAttribute('data-reconnecting', view.reconnecting);
  const accent = el.getAttribute('accent');
  if (accent && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(accent)) {
    root.style.setProperty('--vw-accent', accent);
    root.style.setProperty('--vw-on-accent', textOn(accent));
  } else {
    root.style.removeProperty('--vw-accent');
    root.style.removeProperty('--vw-on-accent');
  }
}

/** The agent's face (its poster or initial), name, and the panel's accessible name. */
function renderIdentity(el, t) {
  const ui = el.ui;
  const agentName = el.agentName;
  const initial = agentName.trim().charAt(0).toUpperCase() || '•';
  const poster = el.getAttribute('poster') || '';
  for (const face of ui.faces) {
    if (poster && face.dataset.poster !== poster) {
      face.textContent = '';
      const img = document.createElement('img');
      img.alt = '';
      img.src = poster;
      face.append(img);
      face.dataset.poster = poster;
    } else if (!poster && face.textContent !== initial) {
      face.textContent = initial;
      delete face.dataset.poster;
    }
  }
  ui.avatar.textContent = initial;
  ui.name.textContent = agentName;
  ui.card.setAttribute('aria-label', agentName ? `${agentName} · ${t.poweredBy}` : t.poweredBy);
}

/** Floating: a launcher button until opened, then the panel with its close (and expand) buttons. */
function renderLauncher(el, view, t) {
  const ui = el.ui;
  const agentName = el.agentName;
  const startLabel = el.startLabel(t);
  ui.launcher.setAttribute('aria-label', `${startLabel}${agentName ? ` · ${agentName}` : ''}`);
  const showCard = !el.isFloating || el.open;
  ui.card.hidden = !showCard;
  ui.launcher.hidden = showCard;
  ui.launcher.setAttribute('aria-expanded', String(showCard));
  ui.launcher.querySelector('small').textContent = el.getAttribute('welcome') || agentName;
  ui.launcher.querySelector('strong').textContent =
    view.state === State.ACTIVE ? el.statusLabel(view, t) : startLabel;
  ui.close.hidden = !el.isFloating;
  ui.close.setAttribute('aria-label', t.close);
  if (el.layout) el.layout.render(t, el.position, el.getAttribute('persona') || '');
}

/** The stage: live avatar video, idle clip, poster, or the neutral tile. */
function renderStage(el, view) {
  const ui = el.ui;
  const poster = el.getAttribute('poster') || '';
  const idleClip = el.getAttribute('idle-clip') || '';
  const previewing = el.previewMode !== 'none';
  const live = view.hasVideo;
  const useIdleClip = !live && previewing && Boolean(idleClip) && el.idleClipFailed !== idleClip;
  const usePoster = !live && !useIdleClip && Boolean(poster) && previewing;
  ui.live.hidden = !live;
  if (useIdleClip && ui.idle.getAttribute('src') !== idleClip) {
    if (poster) ui.idle.poster = poster; // shown while the clip loads
    ui.idle.src = idleClip;
  }
  ui.idle.hidden = !useIdleClip;
  if (ui.idle.hidden && !ui.idle.paused) ui.idle.pause();
  if (useIdleClip && ui.idle.paused) ui.idle.play().catch(() => {});
  if (usePoster && ui.poster.getAttribute('src') !== poster) ui.poster.src = poster;
  ui.poster.hidden = !usePoster;
  ui.tile.hidden = live || useIdleClip || usePoster;
  ui.root.dataset.media = live || useIdleClip || usePoster ? 'media' : 'none';
}

/**
 * The start button, the welcome line, and the panels chunk: the consent notice, the captions,
 * the text box and the feedback form.
 */
function renderPanels(el, view, t) {
  const ui = el.ui;
  const idle = isIdle(view);
  const welcome = el.getAttribute('welcome') || '';
  ui.start.hidden = !idle;
  ui.start.querySelector('span').textContent = el.startLabel(t);
  ui.overlay.hidden = !idle;
  ui.welcome.textContent = welcome;
  ui.welcome.hidden = !welcome || !(idle || view.state === State.CONSENT);

  // A chunk of their own, loaded once the visitor has clicked.
  if (el.panels) {
    el.panels.render(view, t, el.config().consent, el.getAttribute('agent-name') || '');
  } else if (!idle && view.state !== State.ERROR) {
    loadPanels().then((module) => {
      if (!el.panels) {
        adoptStyles(el.shadowRoot, module.CSS);
        el.panels = module.mountPanels(el.shadowRoot, el.controller);
      }
      el.render(el.controller.view());
      const lost = el.shadowRoot.activeElement && !el.focusStillVisible();
      if (el.controller.state === State.CONSENT || lost) el.focusFirst();
    }, () => {});
  }
}

/** The status line, and the error or ending message. */
function renderMessages(el, view, t) {
  const ui = el.ui;
  ui.statusText.textContent = el.statusLabel(view, t);
  ui.bars.hidden = view.state !== State.ACTIVE;
  const error = view.state === State.ERROR ? view.error : null;
  ui.message.hidden = !error;
  if (error) {
    const [text, help] = el.errorText(error, t);
    ui.messageText.textContent = text;
    ui.messageHelp.textContent = help;
    ui.messageHelp.hidden = !help;
  }
  ui.note.hidden = view.state !== State.ENDED;
  if (view.state === State.ENDED) ui.note.textContent = el.endedText(view.endReason, t);
}

/** Sound, mute, end and start-again buttons. */
function renderControls(el, view, t) {
  const ui = el.ui;
  const active = view.state === State.ACTIVE;
  ui.sound.hidden = !(active && view.audioBlocked);
  ui.sound.querySelector('span').textContent = t.enableSound;
  ui.mute.hidden = !active || view.mode === Mode.TEXT;
  ui.mute.setAttribute('aria-pressed', String(view.muted));
  // One name for a toggle button ("Mute microphone"); aria-pressed says whether it is on.
  ui.mute.setAttribute('aria-label', t.mute);
  ui.mute.title = view.muted ? t.unmute : t.mute;
  const micIcon = view.muted ? ICONS.micOff : ICONS.mic;
  if (ui.mute.dataset.icon !== micIcon) {
    ui.mute.innerHTML = micIcon;
    ui.mute.dataset.icon = micIcon;
  }
  ui.end.hidden = !(active || view.state === State.CONNECTING);
  ui.end.querySelector('span').textContent = t.end;
  ui.again.hidden = !(view.state === State.ENDED || view.state === State.ERROR);
  ui.again.querySelector('span').textContent = view.state === State.ERROR ? t.retry : t.startAgain;
}

/**
 * After a change of state, focus goes where the visitor goes next: off a button that went
 * away; to the consent notice's button (what to read and answer next); typing only, to the
 * text box.
 */
function restoreFocus(el, view, previousView, focusWasInside) {
  const stateChanged = !previousView || previousView.state !== view.state;
  const asking = view.state === State.CONSENT;
  const typeNext = view.state === State.ACTIVE && view.mode === Mode.TEXT && focusWasInside;
  if (stateChanged && ((focusWasInside && !el.focusStillVisible()) || asking || typeNext)) {
    el.focusFirst();
  }
}

function isIdle(view) {
  return view.state === State.IDLE || view.state === State.PREVIEW;
}

/** The visitor's consent, remembered in localStorage (when the browser allows it). */
const localStore = {
  get(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch {
      // private mode or full: the notice is asked again next time
    }
  },
  remove(key) {
    try {
      localStorage.removeItem(key);
    } catch {
      // nothing stored
    }
  },
};

export function defineVoiceWidget(name = 'voice-widget') {
  if (!customElements.get(name)) customElements.define(name, VoiceWidgetElement);
}
