"""<voice-widget> in real headless Chromium on the example site (see conftest.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.urls import reverse

from tests.browser.conftest import persona
from tests.factories import make_heartbeat
from voice_widget.lifecycle import end_conversation
from voice_widget.models import Conversation
from voice_widget.signing import unsign_context

pytestmark = pytest.mark.browser

SESSIONS = reverse("voice_widget:sessions")
WIDGET = "voice-widget"
TIMEOUT = 15_000


def widget_text(page: Any, selector: str) -> str:
    return page.locator(f"{WIDGET} {selector}").inner_text(timeout=TIMEOUT)


def wait_for_state(page: Any, state: str, timeout: int = TIMEOUT) -> None:
    page.wait_for_function(
        "state => document.querySelector('voice-widget').state === state",
        arg=state,
        timeout=timeout,
    )


def record_events(page: Any) -> None:
    page.evaluate(
        """() => {
        window.widgetEvents = [];
        for (const name of ['voice-widget:state', 'voice-widget:transcript',
                            'voice-widget:ended', 'voice-widget:error']) {
          document.addEventListener(name, (event) =>
            window.widgetEvents.push({name, detail: event.detail,
                                      composed: event.composed, bubbles: event.bubbles}));
        }
      }"""
    )


# ---- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "slug", "visible", "name"),
    [
        ("/", "ben", ".launcher", "home-floating"),
        ("/contact/", "ben", ".launcher", "contact-floating"),
        ("/bikes/linden-city/", "paula", ".start", "product-inline"),
    ],
)
def test_element_renders_on_each_page(page, path, slug, visible, name):
    page.goto(path)
    widget = page.page.locator(WIDGET)
    assert widget.count() == 1
    assert widget.get_attribute("persona") == slug
    assert page.page.evaluate("document.querySelector('voice-widget').shadowRoot !== null")
    button = page.page.locator(f"{WIDGET} {visible}")
    button.wait_for(state="visible", timeout=TIMEOUT)
    assert button.evaluate("el => el.tagName") == "BUTTON"
    page.screenshot(name)
    assert page.console_errors() == []


def test_inline_widget_speaks_the_personas_language(page):
    page.goto("/bikes/linden-city/")
    assert widget_text(page.page, ".start") == "Gespräch starten"
    assert widget_text(page.page, ".welcome") == "Fragen zum Rad? Sprechen Sie mit Paula."


def test_floating_launcher_opens_the_panel_and_starts(page, worker_alive):
    page.goto("/")
    with page.page.expect_request(lambda r: r.url.endswith(SESSIONS)) as request:
        page.page.locator(f"{WIDGET} .launcher").click()
    assert request.value.post_data_json["persona"] == "ben"
    assert page.page.locator(f"{WIDGET} .card").is_visible()


# ---- previews -----------------------------------------------------------------------------


def test_live_preview_video_is_muted_autoplay_playsinline(page):
    paula = persona("paula")
    paula.avatar_provider = "bey"
    paula.avatar_id = "b9be11b8-89fb-4227-8f86-4a881393cbdb"
    paula.preview_mode = "live"
    paula.full_clean()
    paula.save()
    make_heartbeat(agent_name="voice-widget-test")
    page.page.goto(page.base_url + "/bikes/linden-city/")
    # Visible → the preview asks for a session by itself, without any click.
    with page.page.expect_request(lambda r: r.url.endswith(SESSIONS), timeout=TIMEOUT) as req:
        page.page.wait_for_function("customElements.get('voice-widget') !== undefined")
    assert req.value.post_data_json["persona"] == "paula"
    video = page.page.locator(f"{WIDGET} video.live")
    props = video.evaluate(
        "v => ({muted: v.muted, autoplay: v.autoplay, playsInline: v.playsInline,"
        " attrs: ['muted', 'autoplay', 'playsinline'].filter(a => v.hasAttribute(a))})"
    )
    assert props == {
        "muted": True,
        "autoplay": True,
        "playsInline": True,
        "attrs": ["muted", "autoplay", "playsinline"],
    }
    # The start button stays over the stage while the preview tries to connect.
    page.page.locator(f"{WIDGET} .start").wait_for(state="visible")
    page.screenshot("live-preview")


AVATAR_VIDEO_DOUBLE = """
async (posterUrl) => {
  /* The avatar's video, as a test double: a canvas stream drawn from the poster image. */
  const el = document.querySelector('voice-widget');
  const image = new Image();
  image.src = posterUrl;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = 640; canvas.height = 480;
  const ctx = canvas.getContext('2d');
  let frame = 0;
  setInterval(() => { ctx.drawImage(image, 0, 0, 640, 480);
    ctx.fillStyle = `rgba(47, 107, 79, ${0.1 + 0.1 * Math.sin(frame++ / 5)})`;
    ctx.fillRect(0, 0, 640, 480); }, 40);
  const r = window.roomDouble;
  r.connect = async () => {
    r.calls.push('connect');
    el.shadowRoot.querySelector('video.live').srcObject = canvas.captureStream(25);
    r.emit('video', true);
  };
}
"""


def test_live_preview_shows_the_avatar_video_under_the_start_button(page, site):
    paula = persona("paula")
    paula.avatar_provider = "bey"
    paula.avatar_id = "b9be11b8-89fb-4227-8f86-4a881393cbdb"
    paula.preview_mode = "live"
    paula.full_clean()
    paula.save()
    make_heartbeat(agent_name="voice-widget-test")
    # Keep the widget out of view until the doubles are in place: the preview starts on view.
    page.page.set_viewport_size({"width": 1200, "height": 200})
    page.goto("/bikes/linden-city/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.evaluate(AVATAR_VIDEO_DOUBLE, site.url + "/static/example_site/poster-paula.svg")
    page.page.set_viewport_size({"width": 1200, "height": 820})
    wait_for_state(page.page, "preview")
    video = page.page.locator(f"{WIDGET} video.live")
    video.wait_for(state="visible", timeout=TIMEOUT)
    page.page.wait_for_function(
        "() => { const v = document.querySelector('voice-widget').shadowRoot"
        ".querySelector('video.live'); return v.readyState >= 2 && !v.paused; }"
    )
    assert video.evaluate("v => v.muted") is True
    assert page.page.locator(f"{WIDGET} .tile").is_hidden()
    assert page.page.locator(f"{WIDGET} .start").is_visible()
    calls = page.page.evaluate("window.roomDouble.calls")
    assert calls == ["connect"], "no microphone, no sound before the click"
    page.page.wait_for_timeout(200)
    page.screenshot("live-preview-video")
    page.page.locator(f"{WIDGET} .start").click()
    wait_for_state(page.page, "active")
    calls = page.page.evaluate("window.roomDouble.calls")
    assert calls[1:4] == ["startAudio", "enableMicrophone", "playRemoteAudio"]
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("live-active")))


def test_poster_preview_shows_the_poster_and_connects_only_on_click(page, site):
    paula = persona("paula")
    paula.preview_mode = "poster"
    paula.preview_image_url = site.url + "/static/example_site/poster-paula.svg"
    paula.full_clean()
    paula.save()
    requests: list[str] = []
    page.page.on("request", lambda r: requests.append(r.url))
    page.goto("/bikes/linden-city/")
    poster = page.page.locator(f"{WIDGET} img.poster")
    poster.wait_for(state="visible", timeout=TIMEOUT)
    page.page.wait_for_function(
        "() => document.querySelector('voice-widget').shadowRoot"
        ".querySelector('img.poster').naturalWidth > 0"
    )
    page.page.wait_for_timeout(500)
    assert not [url for url in requests if SESSIONS in url], "no session before the click"
    assert not [url for url in requests if "/chunks/livekit" in url], "LiveKit not loaded yet"
    german = [url for url in requests if "/chunks/de-" in url]
    assert len(german) == 1, "German labels: preloaded by the tag, then reused by the script"
    page.screenshot("poster-preview")


def test_idle_clip_plays_muted_and_looping(page, site):
    paula = persona("paula")
    paula.preview_mode = "poster"
    paula.preview_image_url = site.url + "/static/example_site/poster-paula.svg"
    paula.preview_video_url = "https://cdn.example.invalid/paula-idle.mp4"
    paula.full_clean()
    paula.save()
    page.goto("/bikes/linden-city/")
    clip = page.page.locator(f"{WIDGET} video.idle")
    page.page.wait_for_function(
        "() => document.querySelector('voice-widget').shadowRoot"
        ".querySelector('video.idle').getAttribute('src')"
    )
    props = clip.evaluate(
        "v => ({src: v.getAttribute('src'), muted: v.muted, loop: v.loop, autoplay: v.autoplay,"
        " playsInline: v.playsInline, poster: v.poster})"
    )
    assert props == {
        "src": "https://cdn.example.invalid/paula-idle.mp4",
        "muted": True,
        "loop": True,
        "autoplay": True,
        "playsInline": True,
        "poster": site.url + "/static/example_site/poster-paula.svg",
    }
    # This clip cannot load (its host does not exist): the poster takes its place rather
    # than a black box.
    page.page.locator(f"{WIDGET} img.poster").wait_for(state="visible", timeout=TIMEOUT)
    assert clip.is_hidden()


# ---- keyboard and accessibility -----------------------------------------------------------


def test_start_button_is_reachable_and_usable_by_keyboard(page, worker_alive):
    page.goto("/bikes/linden-city/")
    for _ in range(40):
        page.page.keyboard.press("Tab")
        focused = page.page.evaluate(
            "() => { const a = document.activeElement;"
            " return a && a.tagName === 'VOICE-WIDGET' && a.shadowRoot.activeElement"
            " ? a.shadowRoot.activeElement.className : null; }"
        )
        if focused:
            break
    assert focused == "primary start"
    outline = page.page.locator(f"{WIDGET} .start").evaluate(
        "el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth"
    )
    assert outline == "solid 3px", "visible focus"
    page.screenshot("keyboard-focus")
    with page.page.expect_request(lambda r: r.url.endswith(SESSIONS), timeout=TIMEOUT):
        page.page.keyboard.press("Enter")


def test_buttons_have_accessible_names_and_captions_are_a_polite_live_region(page):
    page.goto("/bikes/linden-city/")
    names = page.page.evaluate(
        """() => [...document.querySelector('voice-widget').shadowRoot.querySelectorAll('button')]
        .map(b => (b.getAttribute('aria-label') || b.textContent).trim())"""
    )
    assert all(names), names
    live = page.page.locator(f"{WIDGET} .captions")
    assert live.get_attribute("aria-live") == "polite"


# ---- the token request --------------------------------------------------------------------


def test_token_request_carries_persona_and_context(page, worker_alive):
    page.goto("/bikes/linden-city/")
    page.page.evaluate(
        "document.querySelector('voice-widget').setContext({cart: ['linden-city'], step: 2})"
    )
    with page.page.expect_request(lambda r: r.url.endswith(SESSIONS)) as request:
        page.page.locator(f"{WIDGET} .start").click()
    body = request.value.post_data_json
    assert body["persona"] == "paula"
    assert body["context"] == {"cart": ["linden-city"], "step": 2}
    assert body["page_url"] == page.base_url + "/bikes/linden-city/"
    facts = unsign_context(body["signed_context"], persona="paula")
    assert facts == {"product": "Linden City", "price": "1290.00", "in_stock": 7}
    assert request.value.headers["content-type"] == "application/json"


# ---- error states -------------------------------------------------------------------------


def click_start_and_read_error(page: Any) -> tuple[str, Any]:
    with page.page.expect_response(lambda r: r.url.endswith(SESSIONS)) as response:
        page.page.locator(f"{WIDGET} .start").click()
    wait_for_state(page.page, "error")
    return widget_text(page.page, ".message-text"), response.value


def test_login_required_refusal_shows_the_api_detail(page, worker_alive):
    paula = persona("paula")
    paula.login_required = True
    paula.save()
    page.goto("/bikes/linden-city/")
    record_events(page.page)
    text, response = click_start_and_read_error(page)
    assert response.status == 401
    assert text == response.json()["detail"] == "Please log in to talk to this assistant."
    retry = page.page.locator(f"{WIDGET} .again")
    assert retry.is_visible() and retry.inner_text() == "Erneut versuchen"
    events = page.page.evaluate("window.widgetEvents")
    error = [e for e in events if e["name"] == "voice-widget:error"][0]
    assert error["detail"]["code"] == "api_refused"
    assert error["detail"]["status"] == 401
    assert error["composed"] and error["bubbles"]
    states = [e["detail"]["state"] for e in events if e["name"] == "voice-widget:state"]
    assert states == ["connecting", "error"]
    page.screenshot("error-401-login-required")


def test_unknown_persona_refusal_shows_the_api_detail(page, worker_alive):
    page.goto("/bikes/linden-city/")
    persona("paula").__class__.objects.filter(slug="paula").update(is_active=False)
    text, response = click_start_and_read_error(page)
    assert response.status == 404
    assert text == response.json()["detail"]
    page.screenshot("error-404-unknown-persona")


def test_throttled_refusal_shows_the_api_detail(page, worker_alive, settings):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "THROTTLE_RATES": {"anon": "0/minute", "user": "0/minute"},
    }
    page.goto("/bikes/linden-city/")
    text, response = click_start_and_read_error(page)
    assert response.status == 429
    assert text == response.json()["detail"]
    page.screenshot("error-429-throttled")


def test_spent_daily_budget_says_not_available_right_now_in_the_personas_language(
    page, worker_alive
):
    paula = persona("paula")  # speaks German
    paula.daily_budget = 0
    paula.save()
    page.goto("/bikes/linden-city/")
    record_events(page.page)
    text, response = click_start_and_read_error(page)
    assert response.status == 429 and response.json()["error"] == "budget_exhausted"
    assert text == (
        "Die Assistenz ist gerade nicht verfügbar. Bitte schauen Sie später wieder vorbei."
    )
    events = page.page.evaluate("window.widgetEvents")
    error = [e for e in events if e["name"] == "voice-widget:error"][0]
    assert error["detail"]["code"] == "budget_exhausted"
    assert "daily budget" in error["detail"]["detail"]  # the server's detail, for the site
    page.screenshot("error-429-budget-exhausted")


def test_page_on_a_site_not_allowed_sees_a_plain_refusal(page, worker_alive):
    """A page on another origin that the persona does not allow: the API answers 403 without
    CORS headers, so the browser hides the answer and the widget says what it can."""
    page.goto("/bikes/linden-city/")
    other_origin = page.base_url.replace("localhost", "127.0.0.1")
    assert other_origin != page.base_url
    page.page.evaluate(
        """origin => {
        const el = document.querySelector('voice-widget');
        el.setAttribute('endpoint', origin + '/voice-widget/api/sessions/');
        el.setAttribute('health-endpoint', origin + '/voice-widget/api/health/');
      }""",
        other_origin,
    )
    page.page.locator(f"{WIDGET} .start").click()
    wait_for_state(page.page, "error")
    assert widget_text(page.page, ".message-text") == "Das Gespräch konnte nicht gestartet werden."
    assert "ob diese Seite die Assistenz nutzen darf" in widget_text(page.page, ".message-help")
    page.screenshot("error-403-origin-not-allowed")


def test_csrf_refusal_for_a_logged_in_visitor_shows_the_api_detail(page, worker_alive, site):
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user("rider", password="pw-for-tests-only")
    client = Client()
    client.force_login(user)
    page.page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site.url}]
    )
    page.goto("/bikes/linden-city/")
    page.page.evaluate(
        "document.querySelector('voice-widget').setAttribute('csrf-token', 'not-the-token')"
    )
    page.page.context.clear_cookies(name="csrftoken")
    text, response = click_start_and_read_error(page)
    assert response.status == 403
    assert response.json()["error"] == "csrf_failed"
    assert text == response.json()["detail"]
    page.screenshot("error-403-csrf")


def test_logged_in_visitor_gets_a_session_with_the_tags_csrf_token(page, worker_alive, site):
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user("rider", password="pw-for-tests-only")
    client = Client()
    client.force_login(user)
    page.page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site.url}]
    )
    paula = persona("paula")
    paula.login_required = True
    paula.save()
    page.goto("/bikes/linden-city/")
    with page.page.expect_response(lambda r: r.url.endswith(SESSIONS)) as response:
        page.page.locator(f"{WIDGET} .start").click()
    assert response.value.status == 201
    assert response.value.request.headers.get("x-csrftoken"), "the tag's CSRF token is sent"


def test_livekit_not_configured_shows_the_api_detail(page, settings, livekit_env_clear):
    settings.VOICE_WIDGET = {"AGENT_NAME": "voice-widget-test"}
    make_heartbeat(agent_name="voice-widget-test")
    page.goto("/bikes/linden-city/")
    text, response = click_start_and_read_error(page)
    assert response.status == 503
    assert text == response.json()["detail"]
    page.screenshot("error-503-not-configured")


def test_no_worker_shows_agent_unavailable_at_once(page):
    page.goto("/")
    record_events(page.page)
    requests: list[str] = []
    page.page.on("request", lambda r: requests.append(r.url))
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "error", timeout=3000)
    assert widget_text(page.page, ".message-text") == (
        "The assistant is not available right now. Please try again later."
    )
    assert not [url for url in requests if url.endswith(SESSIONS)], "no conversation opened"
    errors = page.page.evaluate(
        "window.widgetEvents.filter(e => e.name === 'voice-widget:error').map(e => e.detail.code)"
    )
    assert errors == ["agent_unavailable"]
    warnings = [text for kind, text in page.console if kind == "warning"]
    health = page.base_url + reverse("voice_widget:health")
    assert warnings == [
        "voice-widget: no agent worker is running for agent 'voice-widget-test' (start one with"
        f" `python manage.py run_voice_agent dev`; see {health})."
    ]
    page.screenshot("error-agent-unavailable")


def test_unreachable_livekit_server_is_not_the_visitors_to_fix(
    page, worker_alive, settings, closed_port
):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "LIVEKIT_URL": f"ws://127.0.0.1:{closed_port}",
    }
    page.goto("/bikes/linden-city/")
    record_events(page.page)
    with page.page.expect_response(lambda r: r.url.endswith(SESSIONS)) as response:
        page.page.locator(f"{WIDGET} .start").click()
    assert response.value.status == 201
    assert response.value.json()["server_url"] == f"ws://127.0.0.1:{closed_port}"
    wait_for_state(page.page, "error", timeout=30_000)
    assert widget_text(page.page, ".message-text") == NOT_AVAILABLE_DE
    codes = page.page.evaluate(
        "window.widgetEvents.filter(e => e.name === 'voice-widget:error').map(e => e.detail.code)"
    )
    assert codes == ["livekit_unreachable"]
    warnings = [text for kind, text in page.console if kind == "warning"]
    assert any(f"ws://127.0.0.1:{closed_port} could not be reached" in w for w in warnings)
    page.screenshot("error-livekit-unreachable")


NOT_AVAILABLE_DE = (
    "Die Assistenz ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal."
)


def test_wrong_livekit_credentials_are_not_the_visitors_to_fix(page, worker_alive, settings):
    from tests.doubles.livekit_server import LiveKitServerDouble
    from tests.e2e.threaded import serve_in_thread

    with serve_in_thread(LiveKitServerDouble(api_key="right-key", api_secret="s" * 40)) as server:
        settings.VOICE_WIDGET = {
            **settings.VOICE_WIDGET,
            "LIVEKIT_URL": server.url,
            "LIVEKIT_API_KEY": "right-key",
            "LIVEKIT_API_SECRET": "w" * 40,  # not the server's secret
        }
        page.goto("/bikes/linden-city/")
        record_events(page.page)
        page.page.locator(f"{WIDGET} .start").click()
        wait_for_state(page.page, "error", timeout=30_000)
    assert widget_text(page.page, ".message-text") == NOT_AVAILABLE_DE
    errors = page.page.evaluate(
        "window.widgetEvents.filter(e => e.name === 'voice-widget:error').map(e => e.detail)"
    )
    assert [(e["code"], e["status"]) for e in errors] == [("livekit_refused", 401)]
    warnings = [text for kind, text in page.console if kind == "warning"]
    assert any("refused the conversation's token (HTTP 401)" in w for w in warnings), warnings
    page.screenshot("error-livekit-refused")


def test_microphone_denied_explains_how_to_allow_it(denying_browser, site, worker_alive):
    context = denying_browser.new_context(viewport={"width": 1200, "height": 820})
    try:
        page = context.new_page()
        page.goto(site.url + "/")
        page.wait_for_function("customElements.get('voice-widget') !== undefined")
        page.locator(f"{WIDGET} .launcher").click()
        wait_for_state(page, "error", timeout=30_000)
        assert widget_text(page, ".message-text") == (
            "The microphone is blocked, so the assistant cannot hear you."
        )
        assert "Allow microphone access" in widget_text(page, ".message-help")
        page.screenshot(path=str(screenshot_path("error-mic-denied")))
    finally:
        context.close()


def screenshot_path(name: str) -> Any:
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


# ---- a whole conversation, with a room test double in the page ------------------------------

ROOM_DOUBLE = """
() => {
  /* A room test double: the room interface of livekit-room.js, scripted by the test. */
  class RoomDouble {
    constructor() {
      this.listeners = {}; this.calls = [];
      this.attributes = { 'voice_widget.protocol': '1' };  // ready for voice_widget.start
    }
    on(e, f) { (this.listeners[e] = this.listeners[e] || []).push(f); }
    emit(e, ...a) { (this.listeners[e] || []).forEach((f) => f(...a)); }
    async connect(url, token) { this.calls.push('connect'); }
    async disconnect() { this.calls.push('disconnect'); }
    startAudio() { this.calls.push('startAudio'); return Promise.resolve(); }
    get canPlaybackAudio() { return this.canPlay !== false; }
    playRemoteAudio() { this.calls.push('playRemoteAudio'); }
    async enableMicrophone() { this.calls.push('enableMicrophone'); }
    async setMicrophoneMuted(m) { this.calls.push('muted:' + m); }
    agentIdentity() { return 'agent-1'; }
    agentAttributes() { return { ...this.attributes }; }
    async performRpc(id, method) { this.calls.push(method); return '{"ok": true}'; }
    registerRpcMethod() {}
    set(attrs) {
      Object.assign(this.attributes, attrs);
      this.emit('agent-attributes', { ...this.attributes });
    }
  }
  const el = document.querySelector('voice-widget');
  window.roomDouble = new RoomDouble();
  el.createRoom = () => window.roomDouble;
}
"""


def test_conversation_flow_with_a_room_double(page, worker_alive):
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    record_events(page.page)
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "active")
    calls = page.page.evaluate("window.roomDouble.calls")
    assert calls[:2] == ["startAudio", "enableMicrophone"]
    assert "voice_widget.start" in calls
    page.page.evaluate(
        """() => {
        const r = window.roomDouble;
        r.set({'lk.agent.state': 'speaking'});
        r.emit('transcription', {streamId: 'a1', segmentId: 'SG_1', role: 'agent',
          delta: "Hi, I'm Ben from Linden Bikes. What can I help you with?"});
        r.emit('transcription', {streamId: 'a1', segmentId: 'SG_1', role: 'agent',
          delta: '', done: true, final: true});
        r.emit('transcription', {streamId: 'u1', segmentId: 'SG_2', role: 'user',
          delta: 'Can I test ride the Linden Cargo on Saturday?', done: true, final: true});
        r.emit('transcription', {streamId: 'a2', segmentId: 'SG_3', role: 'agent',
          delta: 'Yes, Saturdays from half past nine to three, no appointment needed.'});
      }"""
    )
    captions = page.page.locator(f"{WIDGET} .captions .line")
    assert captions.count() == 3
    assert captions.nth(1).get_attribute("data-role") == "user"
    assert widget_text(page.page, ".status-text") == "Speaking"
    page.screenshot("active-captions")
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("active-card")))

    mute = page.page.locator(f"{WIDGET} .mute")
    assert mute.get_attribute("aria-label") == "Mute microphone"
    mute.click()
    assert mute.get_attribute("aria-pressed") == "true"
    assert widget_text(page.page, ".status-text") == "Your microphone is muted"
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("active-muted")))
    mute.click()
    assert mute.get_attribute("aria-pressed") == "false"

    with page.page.expect_request(lambda r: r.url.endswith("/end/")) as end_request:
        page.page.locator(f"{WIDGET} .end").click()
    assert json.loads(end_request.value.post_data)["end_key"]
    wait_for_state(page.page, "ended")
    assert page.page.locator(f"{WIDGET} .again").inner_text() == "Start again"
    page.screenshot("ended")
    events = page.page.evaluate("window.widgetEvents")
    names = {e["name"] for e in events}
    assert {"voice-widget:state", "voice-widget:transcript", "voice-widget:ended"} <= names
    ended = [e for e in events if e["name"] == "voice-widget:ended"][0]["detail"]
    assert ended["reason"] == "client_end" and ended["conversation"]
    assert page.console_errors() == []


def start_with_room_double(page: Any, path: str = "/", opener: str = ".launcher") -> None:
    page.goto(path)
    page.page.evaluate(ROOM_DOUBLE)
    record_events(page.page)
    page.page.locator(f"{WIDGET} {opener}").click()
    wait_for_state(page.page, "active")


def test_audio_blocked_offers_a_tap_to_enable_sound(page, worker_alive):
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.evaluate("window.roomDouble.canPlay = false")
    record_events(page.page)
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "active")
    sound = page.page.locator(f"{WIDGET} .sound")
    assert sound.is_visible()
    assert sound.inner_text() == "Tap to turn on sound"
    codes = page.page.evaluate(
        "window.widgetEvents.filter(e => e.name === 'voice-widget:error').map(e => e.detail.code)"
    )
    assert codes == ["audio_blocked"]
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("audio-blocked")))
    page.page.evaluate("window.roomDouble.canPlay = true")
    sound.click()
    sound.wait_for(state="hidden")
    assert page.page.evaluate("window.roomDouble.calls.filter(c => c === 'startAudio').length") == 2


def test_agent_ends_with_a_reason(page, worker_alive):
    start_with_room_double(page)
    # As the agent does: the ending on record first, then the attribute that tells the widget.
    end_conversation(Conversation.objects.latest("created_at").pk, "max_duration")
    page.page.evaluate("window.roomDouble.set({'voice_widget.end_reason': 'max_duration'})")
    wait_for_state(page.page, "ended")
    assert widget_text(page.page, ".note") == "The conversation reached its time limit."
    ended = page.page.evaluate(
        "window.widgetEvents.filter(e => e.name === 'voice-widget:ended').map(e => e.detail)"
    )
    assert [e["reason"] for e in ended] == ["max_duration"]
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("ended-by-agent")))


def test_reconnecting_then_giving_up_offers_retry(page, worker_alive):
    start_with_room_double(page)
    page.page.evaluate("window.roomDouble.emit('reconnecting')")
    assert widget_text(page.page, ".status-text") == "Reconnecting…"
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("reconnecting")))
    page.page.evaluate("window.roomDouble.emit('disconnected', 'connection')")
    wait_for_state(page.page, "error")
    assert widget_text(page.page, ".message-text") == (
        "The connection was lost and could not be restored."
    )
    assert page.page.locator(f"{WIDGET} .again").inner_text() == "Try again"
    page.page.locator(f"{WIDGET} .card").screenshot(path=str(screenshot_path("disconnected")))


def test_escape_closes_the_floating_panel_and_focus_returns_to_the_launcher(page, worker_alive):
    start_with_room_double(page)
    page.page.locator(f"{WIDGET} .end").focus()
    page.page.keyboard.press("Escape")
    launcher = page.page.locator(f"{WIDGET} .launcher")
    launcher.wait_for(state="visible")
    assert page.page.locator(f"{WIDGET} .card").is_hidden()
    assert launcher.get_attribute("aria-expanded") == "false"
    focused = page.page.evaluate(
        "document.querySelector('voice-widget').shadowRoot.activeElement.className"
    )
    assert focused == "launcher"
    assert "Listening" in launcher.inner_text() or "Getting ready" in launcher.inner_text()
    page.page.keyboard.press("Enter")
    assert page.page.locator(f"{WIDGET} .card").is_visible()
    assert page.page.evaluate("document.querySelector('voice-widget').state") == "active"


def test_reduced_motion_stops_the_animations(page, worker_alive):
    page.page.emulate_media(reduced_motion="reduce")
    start_with_room_double(page)
    page.page.evaluate("window.roomDouble.set({'lk.agent.state': 'speaking'})")
    animations = page.page.locator(f"{WIDGET} .bars i").first.evaluate(
        "el => getComputedStyle(el).animationName"
    )
    assert animations == "none"
    page.page.emulate_media(reduced_motion="no-preference")
    assert (
        page.page.locator(f"{WIDGET} .bars i").first.evaluate(
            "el => getComputedStyle(el).animationName"
        )
        == "vw-talk"
    )


def test_dark_theme_and_accent(page, worker_alive):
    ben = persona("ben")
    ben.theme = "dark"
    ben.accent_color = "#f59e0b"
    ben.save()
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "active")
    page.page.evaluate(
        """() => {
        const r = window.roomDouble;
        r.set({'lk.agent.state': 'listening'});
        r.emit('transcription', {streamId: 'a1', segmentId: 'SG_1', role: 'agent',
          delta: 'Hi! Which bike are you curious about?', done: true, final: true});
      }"""
    )
    colours = page.page.locator(f"{WIDGET} .end").evaluate(
        "el => [getComputedStyle(el.closest('.card')).backgroundColor,"
        " getComputedStyle(el.closest('.card')).color]"
    )
    assert colours == ["rgb(23, 25, 31)", "rgb(242, 243, 245)"]
    # Dark text on the light amber accent, for contrast.
    on_accent = page.page.locator(f"{WIDGET} .card .face").evaluate(
        "el => getComputedStyle(el).color"
    )
    assert on_accent == "rgb(17, 17, 17)"
    page.screenshot("active-dark-theme")


# ---- the host page ------------------------------------------------------------------------


STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    # The LiveKit server: signalling over wss, and an https check when a connection fails.
    "connect-src 'self' wss://livekit.test.invalid https://livekit.test.invalid"
)


def test_works_under_a_strict_content_security_policy(page, worker_alive):
    """No inline script, no inline style: the page's CSP needs no 'unsafe-inline'."""

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(
            response=response,
            headers={**response.headers, "content-security-policy": STRICT_CSP},
        )

    page.page.route(re.compile(r".*/bikes/linden-city/$"), with_csp)
    page.goto("/bikes/linden-city/")
    start = page.page.locator(f"{WIDGET} .start")
    accent = persona("paula").accent_color  # set by the element through the CSSOM
    rgb = tuple(int(accent[i : i + 2], 16) for i in (1, 3, 5))
    assert start.evaluate("el => getComputedStyle(el).backgroundColor") == f"rgb{rgb}"
    assert start.evaluate("el => getComputedStyle(el).borderRadius") == "999px"
    with page.page.expect_request(lambda r: r.url.endswith(SESSIONS)):
        start.click()
    page.page.wait_for_timeout(300)
    violations = [text for text in page.console_errors() if "Content Security Policy" in text]
    assert violations == []
    page.screenshot("strict-csp")


def test_no_console_errors_on_a_page_without_the_widget(page):
    persona("ben").__class__.objects.update(is_active=False)
    page.page.goto(page.base_url + "/")
    page.page.wait_for_load_state("networkidle")
    assert page.page.locator(WIDGET).count() == 0
    assert page.page.locator("script[src*='voice-widget']").count() == 0
    assert page.console_errors() == []


def test_no_console_errors_on_a_page_with_the_idle_widget(page):
    page.goto("/bikes/linden-city/")
    page.page.wait_for_load_state("networkidle")
    assert page.console_errors() == []


AGGRESSIVE_HOST_CSS = """
* { font-family: "Comic Sans MS", cursive !important; color: #f0f !important;
    letter-spacing: 3px !important; text-transform: uppercase !important;
    line-height: 3 !important; font-size: 22px !important; word-spacing: 9px !important; }
html { font-size: 31px !important; }
button { background: lime !important; border: 6px dashed red !important; padding: 30px !important;
         border-radius: 0 !important; }
div, section, header, p, span { margin: 20px !important; background: yellow !important; }
img, video { filter: grayscale(1) invert(1) !important; display: none !important; }
[hidden] { display: block !important; }
svg { width: 90px !important; }
"""

STYLE_PROBE = """
() => {
  const root = document.querySelector('voice-widget').shadowRoot;
  const props = ['font-family', 'font-size', 'color', 'letter-spacing', 'text-transform',
                 'line-height', 'background-color', 'padding-top', 'border-top-width',
                 'border-radius', 'margin-top', 'display', 'width', 'height'];
  const out = {};
  for (const sel of ['.card', '.start', '.welcome', '.name', '.status-text', '.head', '.stage',
                     '.start svg', '.tile .avatar']) {
    const el = root.querySelector(sel);
    const cs = getComputedStyle(el);
    out[sel] = Object.fromEntries(props.map((p) => [p, cs.getPropertyValue(p)]));
  }
  return out;
}
"""


def test_host_page_css_does_not_change_the_widget(page):
    page.goto("/bikes/linden-city/")
    # The host decides where the inline widget sits and how wide it is (the aggressive CSS
    # below also changes the product page's own layout); pin both with the host element's
    # style, so what is compared is the widget itself.
    page.page.evaluate(
        "document.querySelector('voice-widget').style.cssText ="
        " 'position: fixed; left: 24px; top: 24px; width: 320px; z-index: 10'"
    )
    # The inside of the card, without its rounded corners (where the page shows through).
    inside = {"x": 32, "y": 32, "width": 304, "height": 270}
    before = page.page.evaluate(STYLE_PROBE)
    shot_before = page.page.screenshot(clip=inside, path=str(screenshot_path("host-css-before")))
    page.page.add_style_tag(content=AGGRESSIVE_HOST_CSS)
    page.page.wait_for_timeout(100)
    after = page.page.evaluate(STYLE_PROBE)
    shot_after = page.page.screenshot(clip=inside, path=str(screenshot_path("host-css-after")))
    page.screenshot("host-css-page")
    assert after == before
    assert shot_after == shot_before, "the widget's pixels are the same"
    # …and the widget's CSS does not leak out: the page's own buttons keep the host's look.
    host_button = page.page.evaluate(
        "() => { const b = document.createElement('button'); document.body.append(b);"
        " return getComputedStyle(b).backgroundColor; }"
    )
    assert host_button == "rgb(0, 255, 0)"


@pytest.mark.parametrize("path", ["/", "/bikes/linden-city/"])
def test_fits_a_phone_screen(page, worker_alive, path):
    page.page.set_viewport_size({"width": 390, "height": 844})
    page.goto(path)
    page.page.evaluate(ROOM_DOUBLE)
    opener = ".launcher" if path == "/" else ".start"
    page.page.locator(f"{WIDGET} {opener}").click()
    wait_for_state(page.page, "active")
    box = page.page.locator(f"{WIDGET} .card").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    for control in (".mute", ".end"):
        control_box = page.page.locator(f"{WIDGET} {control}").bounding_box()
        assert control_box["height"] >= 40, "touch targets"
    page.screenshot("phone" + path.replace("/", "-").rstrip("-"))


VIEWPORTS = [pytest.param(1366, 600, id="laptop"), pytest.param(390, 844, id="phone")]

BOX_IN_VIEWPORT = """
(selector) => {
  const el = document.querySelector('voice-widget').shadowRoot.querySelector(selector);
  const r = el.getBoundingClientRect();
  return {top: r.top, left: r.left, bottom: r.bottom, right: r.right,
          width: innerWidth, height: innerHeight};
}
"""


def assert_in_viewport(page: Any, selector: str, where: str) -> None:
    box = page.evaluate(BOX_IN_VIEWPORT, selector)
    inside = (
        box["top"] >= 0
        and box["left"] >= 0
        and box["bottom"] <= box["height"]
        and box["right"] <= box["width"]
    )
    assert inside, f"{selector} {where}: {box}"


def scroll_to(page: Any, where: str) -> None:
    y = "0" if where == "top" else "document.documentElement.scrollHeight"
    page.evaluate(f"window.scrollTo(0, {y})")
    page.wait_for_function(
        f"Math.abs(window.scrollY - Math.min({y},"
        " document.documentElement.scrollHeight - innerHeight)) < 2"
    )


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
@pytest.mark.parametrize("path", ["/", "/contact/"])
def test_floating_launcher_and_panel_stay_in_the_viewport(page, worker_alive, path, width, height):
    page.page.set_viewport_size({"width": width, "height": height})
    page.goto(path)
    page.page.evaluate(ROOM_DOUBLE)
    name = f"floating-{width}x{height}" + path.replace("/", "-").rstrip("-")
    for where in ("top", "bottom"):
        scroll_to(page.page, where)
        assert_in_viewport(page.page, ".launcher", f"at the {where} of {path}")
    page.screenshot(name + "-launcher")
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "active")
    for where in ("bottom", "top"):
        scroll_to(page.page, where)
        for selector in (".card", ".close", ".end"):
            assert_in_viewport(page.page, selector, f"at the {where} of {path}")
    page.screenshot(name + "-panel")


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_floating_launcher_leaves_the_footer_readable(page, width, height):
    page.page.set_viewport_size({"width": width, "height": height})
    page.goto("/")
    scroll_to(page.page, "bottom")
    launcher = page.page.locator(f"{WIDGET} .launcher").bounding_box()
    footer = page.page.locator(".site-footer p").evaluate(
        "p => { const range = document.createRange(); range.selectNodeContents(p);"
        " const r = range.getBoundingClientRect();"
        " return {x: r.left, y: r.top, width: r.width, height: r.height}; }"
    )
    overlap_x = min(launcher["x"] + launcher["width"], footer["x"] + footer["width"]) - max(
        launcher["x"], footer["x"]
    )
    overlap_y = min(launcher["y"] + launcher["height"], footer["y"] + footer["height"]) - max(
        launcher["y"], footer["y"]
    )
    assert overlap_x <= 0 or overlap_y <= 0, (launcher, footer)


def test_keyboard_opens_the_floating_panel_and_escape_returns_to_the_launcher(page, worker_alive):
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    focused_class = (
        "() => { const a = document.activeElement;"
        " return a && a.tagName === 'VOICE-WIDGET' && a.shadowRoot.activeElement"
        " ? a.shadowRoot.activeElement.className : null; }"
    )
    for _ in range(40):
        page.page.keyboard.press("Tab")
        if page.page.evaluate(focused_class) == "launcher":
            break
    assert page.page.evaluate(focused_class) == "launcher"
    page.page.keyboard.press("Enter")
    wait_for_state(page.page, "active")
    assert page.page.locator(f"{WIDGET} .card").is_visible()
    focus_in_panel = page.page.evaluate(
        "() => { const root = document.querySelector('voice-widget').shadowRoot;"
        " const a = root.activeElement;"
        " return Boolean(a) && root.querySelector('.card').contains(a); }"
    )
    assert focus_in_panel, "focus moved into the opened panel"
    page.page.keyboard.press("Escape")
    page.page.locator(f"{WIDGET} .launcher").wait_for(state="visible")
    assert page.page.locator(f"{WIDGET} .card").is_hidden()
    assert page.page.evaluate(focused_class) == "launcher"


CONTRAST_PROBE = """
(selectors) => {
  const root = document.querySelector('voice-widget').shadowRoot;
  const rgb = (value) => value.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const c = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement || node.getRootNode().host) {
      const value = getComputedStyle(node).backgroundColor;
      const parts = rgb(value);
      if (parts.length === 3 || parts[3] > 0) return parts.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = {};
  for (const selector of selectors) {
    const el = root.querySelector(selector);
    const fg = luminance(rgb(getComputedStyle(el).color));
    const bg = luminance(background(el));
    out[selector] = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  }
  return out;
}
"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5_to_1(page, worker_alive, theme):
    ben = persona("ben")
    ben.theme = theme
    ben.save()
    page.goto("/")
    page.page.evaluate(ROOM_DOUBLE)
    page.page.locator(f"{WIDGET} .launcher").click()
    wait_for_state(page.page, "active")
    page.page.evaluate(
        """() => {
        const r = window.roomDouble;
        r.set({'lk.agent.state': 'listening'});
        r.emit('transcription', {streamId: 'a', segmentId: 'A', role: 'agent', delta: 'Hello'});
        r.emit('transcription', {streamId: 'u', segmentId: 'U', role: 'user', delta: 'Hi'});
      }"""
    )
    ratios = page.page.evaluate(
        CONTRAST_PROBE,
        [
            ".name",
            ".status-text",
            ".line[data-role='agent'] .said",
            ".line[data-role='user'] .said",
            ".end",
            ".mute",
        ],
    )
    assert all(ratio >= 4.5 for ratio in ratios.values()), ratios
