/**
 * Page tools: functions of the host page the agent may call (the persona declares which).
 * This registry is in the first-load script (pages register tools before anyone talks); how
 * a call is answered is in page-tool-call.js, loaded at the first call.
 */

export const RPC_PAGE_TOOL = 'voice_widget.page_tool';
export const TOOL_EVENT = 'voice-widget:tool';

export class PageTools {
  /**
   * @param {{emit?: (name: string, detail: object) => void, clock?: object}} [deps] emit
   *   dispatches the `voice-widget:tool` event for tools no handler was registered for
   */
  constructor({ emit, clock } = {}) {
    this.emit = emit || (() => {});
    this.clock = clock || { setTimeout, clearTimeout };
    this.tools = new Map();
  }

  /** Registers `handler(arguments)` for the tool `name`; returns a function unregistering it. */
  register(name, spec, handler) {
    if (typeof spec === 'function') [spec, handler] = [{}, spec];
    if (!name || typeof handler !== 'function') {
      throw new TypeError('registerTool(name, {description, parameters}, handler)');
    }
    const entry = { spec: spec || {}, handler };
    this.tools.set(name, entry);
    return () => {
      if (this.tools.get(name) === entry) this.tools.delete(name);
    };
  }

  unregister(name) {
    this.tools.delete(name);
  }

  /** Asks `voice-widget:tool` listeners for a tool without a handler (see page-tool-call.js). */
  ask(name, args, respond) {
    this.emit(TOOL_EVENT, { name, arguments: args, respond });
  }

  /** Answers one `voice_widget.page_tool` call (a JSON string, never a rejection). */
  async call(payload) {
    const { answerPageTool } = await import('./page-tool-call.js');
    return answerPageTool(this, payload);
  }
}
