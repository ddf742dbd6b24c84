/**
 * The widget's side of the token API: create a session (which also says when no agent runs),
 * ask where it stands, end it, rate it.
 */

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the request never got an answer)
   * @param {string} code the API's error code, e.g. "login_required"
   * @param {string} detail a message for the visitor, from the API when it sent one
   * @param {object} [data] the whole error body (e.g. `agent_name` with `agent_unavailable`)
   */
  constructor(status, code, detail, data = {}) {
    super(detail || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.data = data;
  }
}

/** The value of the `csrftoken` cookie, when the page has one. */
export function csrfToken(cookieString) {
  for (const part of (cookieString || '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === 'csrftoken') return decodeURIComponent(rest.join('='));
  }
  return '';
}

/** `url` made absolute against `base` (default: the page), or left as it is. */
export function absoluteUrl(url, base) {
  try {
    const pageUrl = typeof document === 'undefined' ? undefined : document.baseURI;
    return new URL(url, base || pageUrl).href;
  } catch {
    return url;
  }
}

/**
 * @param {{sessionsUrl: string, healthUrl?: string, fetch?: typeof fetch,
 *          cookies?: () => string, csrfToken?: string,
 *          sendBeacon?: (url: string, data: Blob|string) => boolean}} options
 *   `csrfToken` comes from the template tag (works with an HttpOnly CSRF cookie); without
 *   it the `csrftoken` cookie is used.
 */
export function createApi({
  sessionsUrl,
  healthUrl,
  fetch: fetchImpl,
  cookies,
  csrfToken: givenCsrfToken,
  sendBeacon,
}) {
  const doFetch = fetchImpl || ((...args) => globalThis.fetch(...args));
  const readCookies = cookies || (() => (typeof document === 'undefined' ? '' : document.cookie));

  function headers() {
    const result = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const token = givenCsrfToken || csrfToken(readCookies());
    if (token) result['X-CSRFToken'] = token;
    return result;
  }

  async function postJson(url, body) {
    let response;
    try {
      response = await doFetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: headers(),
        body: JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network', '');
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const code = (data && data.error) || `http_${response.status}`;
      const detail = (data && typeof data.detail === 'string' && data.detail) || '';
      throw new ApiError(response.status, code, detail, (data && typeof data === 'object' && data) || {});
    }
    return data || {};
  }

  return {
    /** The health endpoint's URL (named in developers' warnings; monitoring reads it). */
    healthUrl: healthUrl ? absoluteUrl(healthUrl) : '',

    /**
     * POST the session request; resolves with the API's 201 body. Its `end_url` and
     * `status_url` are paths on the API's site, so they are made absolute against the
     * endpoint (the page may be elsewhere). `clicked`: the visitor has clicked already (no
     * live preview), so the agent greets as soon as it joins.
     */
    async createSession(body, { clicked = false } = {}) {
      if (!sessionsUrl) throw new ApiError(0, 'not_configured', '');
      const data = await postJson(sessionsUrl, clicked ? { ...body, clicked } : body);
      for (const key of ['end_url', 'status_url', 'feedback_url', 'resume_url']) {
        if (data[key]) data[key] = absoluteUrl(data[key], absoluteUrl(sessionsUrl));
      }
      return data;
    },

    /**
     * Tell the server the conversation is over; resolves with its answer (the status and the
     * ending on record, which may be another than `reason`), or null. With `beacon`, use
     * navigator.sendBeacon (text/plain, so no CORS preflight), which survives the page being
     * closed. `reason`: `client_end` (default), `participant_left` (the page was closed) or
     * `error` (the widget failed), with `detail` the widget's error code (`livekit_unreachable`…).
     */
    async endSession(session, { beacon = false, reason = 'client_end', detail } = {}) {
      if (!session || !session.end_url) return null;
      const body = { end_key: session.end_key, reason };
      if (detail) body.detail = detail;
      if (beacon && sendBeacon) {
        sendBeacon(session.end_url, new Blob([JSON.stringify(body)], { type: 'text/plain' }));
        return null;
      }
      try {
        return await postJson(session.end_url, body);
      } catch {
        // Ending is best effort: the worker and the room's timeouts end it too.
        return null;
      }
    },

    /** The visitor's rating (`{rating, comment}`); resolves true when it was stored. */
    async sendFeedback(session, { rating, comment = '' }) {
      if (!session || !session.feedback_url) return false;
      const body = { end_key: session.end_key, rating };
      if (comment) body.comment = comment;
      try {
        await postJson(session.feedback_url, body);
        return true;
      } catch {
        return false;
      }
    },

    /**
     * Rejoin a conversation after a reload: `{participant_token, server_url, transcript,
     * agent, ...}` for the same room and identity. Rejects with ApiError when refused
     * (`conversation_ended`, `resume_window_passed`, `invalid_end_key`).
     */
    async resumeSession(saved) {
      if (!saved || !saved.resume_url) throw new ApiError(0, 'not_configured', '');
      return postJson(saved.resume_url, { end_key: saved.end_key });
    },

    /** Where the conversation stands (`{status, end_reason}`), or null when unknown. */
    async sessionStatus(session) {
      if (!session || !session.status_url) return null;
      try {
        return await postJson(session.status_url, { end_key: session.end_key });
      } catch {
        return null;
      }
    },
  };
}
