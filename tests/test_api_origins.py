"""Which pages may use a persona: the views' 403 and django-cors-headers' CORS answers."""

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, RequestFactory

from tests.api_support import (
    assert_refused,
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
)
from tests.factories import make_conversation, make_persona
from voice_widget.api.origins import (
    allow_cors_for_persona_origins,
    canonical_origin,
    origin_allowed_for_persona,
    request_allowed_for_persona,
)

# The session endpoint opens conversations only while a worker serves them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worker_alive")]

URL = "/voice-widget/api/sessions/"
PARTNER = "https://partner.example.com"
STRANGER = "https://evil.example.net"
ACAO = "Access-Control-Allow-Origin"


@pytest.fixture
def persona():
    return make_persona(slug="ben", allowed_origins=f"{PARTNER}\nhttp://localhost:3000")


def start(client, origin=None, slug="ben"):
    extra = {"HTTP_ORIGIN": origin} if origin else {}
    return post_json(client, URL, {"persona": slug}, **extra)


def preflight(client, url, origin, method="POST"):
    return client.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-csrftoken",
    )


# --- the views --------------------------------------------------------------------------------


def test_request_without_origin_is_allowed(client, persona):
    assert start(client).status_code == 201


def test_same_origin_request_is_allowed_without_being_listed(client, persona):
    assert start(client, "http://testserver").status_code == 201


def test_same_origin_is_scheme_host_and_port(client, persona):
    assert_refused(start(client, "https://testserver"), 403, "origin_not_allowed")
    assert_refused(start(client, "http://testserver:8080"), 403, "origin_not_allowed")


def test_origin_listed_on_the_persona_is_allowed(client, persona):
    response = start(client, PARTNER)
    assert response.status_code == 201
    assert response[ACAO] == PARTNER


def test_origin_match_ignores_case_and_default_port(client, persona):
    assert start(client, "HTTPS://Partner.Example.com").status_code == 201
    assert start(client, "https://partner.example.com:443").status_code == 201


def test_origin_not_listed_is_403_and_writes_nothing(client, persona):
    response = start(client, STRANGER)
    assert_refused(response, 403, "origin_not_allowed")
    assert ACAO not in response


def test_null_origin_of_sandboxed_frames_is_refused(client, persona):
    assert_refused(start(client, "null"), 403, "origin_not_allowed")


def test_origin_allowed_for_another_persona_is_refused_for_this_one(client, persona):
    make_persona(slug="paula", allowed_origins="https://paula.example.org")
    assert_refused(start(client, "https://paula.example.org"), 403, "origin_not_allowed")


def test_globally_allowed_origin_works_for_every_persona(client, persona, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "ALLOWED_ORIGINS": ["https://all.example"]}
    make_persona(slug="paula")
    assert start(client, "https://all.example", slug="paula").status_code == 201


def test_listed_origin_with_another_port_is_refused(client, persona):
    assert_refused(start(client, "http://localhost:3001"), 403, "origin_not_allowed")


# --- the one decision function ----------------------------------------------------------------


def test_origin_decision_for_a_persona(persona, settings):
    assert origin_allowed_for_persona(persona, PARTNER)
    assert origin_allowed_for_persona(persona, "http://localhost:3000")
    assert not origin_allowed_for_persona(persona, STRANGER)
    assert not origin_allowed_for_persona(persona, "null")
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "ALLOWED_ORIGINS": [STRANGER]}
    assert origin_allowed_for_persona(persona, STRANGER)


def test_request_decision_allows_no_origin_and_same_origin(persona):
    factory = RequestFactory()
    assert request_allowed_for_persona(factory.post(URL), persona)
    assert request_allowed_for_persona(factory.post(URL, HTTP_ORIGIN="http://testserver"), persona)
    assert not request_allowed_for_persona(factory.post(URL, HTTP_ORIGIN=STRANGER), persona)


def test_canonical_origin():
    assert canonical_origin("HTTPS://Shop.Example.com:443/") == "https://shop.example.com"
    assert canonical_origin("http://shop.example.com:80") == "http://shop.example.com"
    assert canonical_origin("http://shop.example.com:8080") == "http://shop.example.com:8080"


# --- CORS by django-cors-headers --------------------------------------------------------------


def test_preflight_from_an_allowed_origin_gets_cors_headers(client, persona):
    response = preflight(client, URL, PARTNER)
    assert response.status_code == 200
    assert response[ACAO] == PARTNER
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed_headers = response["Access-Control-Allow-Headers"]
    assert "content-type" in allowed_headers and "x-csrftoken" in allowed_headers
    assert "Access-Control-Allow-Credentials" not in response


def test_preflight_from_a_refused_origin_gets_no_cors_headers(client, persona):
    response = preflight(client, URL, STRANGER)
    assert ACAO not in response
    assert "Access-Control-Allow-Methods" not in response


def test_preflight_from_a_globally_allowed_origin_gets_cors_headers(client, persona, settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "ALLOWED_ORIGINS": ["https://all.example"]}
    assert preflight(client, URL, "https://all.example")[ACAO] == "https://all.example"


def test_preflight_for_an_inactive_personas_origin_gets_no_cors_headers(client):
    make_persona(slug="old", is_active=False, allowed_origins=PARTNER)
    assert ACAO not in preflight(client, URL, PARTNER)


def test_persona_endpoint_shares_cors_only_with_that_personas_origins(client, persona):
    make_persona(slug="paula", allowed_origins="https://paula.example.org")
    url = "/voice-widget/api/personas/ben/"
    assert client.get(url, HTTP_ORIGIN=PARTNER)[ACAO] == PARTNER
    assert ACAO not in client.get(url, HTTP_ORIGIN="https://paula.example.org")


@pytest.mark.parametrize("endpoint", ["end", "status"])
def test_end_and_status_preflights_follow_the_conversations_persona(client, persona, endpoint):
    conversation = make_conversation(persona)
    url = f"/voice-widget/api/sessions/{conversation.pk}/{endpoint}/"
    assert preflight(client, url, PARTNER)[ACAO] == PARTNER
    assert ACAO not in preflight(client, url, STRANGER)


def test_webhook_is_never_shared_cross_origin(client, persona):
    assert ACAO not in preflight(client, "/voice-widget/api/livekit/webhook/", PARTNER)


def test_pages_outside_the_api_get_no_cors_headers(client, persona):
    response = client.get("/", HTTP_ORIGIN=PARTNER)
    assert ACAO not in response


def test_cors_for_same_origin_requests_needs_no_database(persona, django_assert_num_queries):
    request = RequestFactory().options(URL, HTTP_ORIGIN="http://testserver")
    with django_assert_num_queries(0):
        assert allow_cors_for_persona_origins(None, request) is False


# --- under ASGI (daphne): CorsMiddleware runs on the event loop ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_cors_decision_works_when_cors_middleware_runs_async(persona):
    client = AsyncClient()
    allowed = async_to_sync(client.options)(
        URL, headers={"Origin": PARTNER, "Access-Control-Request-Method": "POST"}
    )
    refused = async_to_sync(client.options)(
        URL, headers={"Origin": STRANGER, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 200
    assert allowed[ACAO] == PARTNER
    assert ACAO not in refused


@pytest.mark.django_db(transaction=True)
def test_cross_origin_session_under_asgi_is_created_with_cors_headers(persona):
    client = AsyncClient()
    response = async_to_sync(client.post)(
        URL, {"persona": "ben"}, content_type="application/json", headers={"Origin": PARTNER}
    )
    assert response.status_code == 201, response.content
    assert response[ACAO] == PARTNER
    refused = async_to_sync(client.post)(
        URL, {"persona": "ben"}, content_type="application/json", headers={"Origin": STRANGER}
    )
    assert refused.status_code == 403


# --- the CORS decision reads an index of origins, not the database per request -----------------


def test_cross_origin_preflights_read_the_database_once(client, persona, django_assert_num_queries):
    conversation = make_conversation(persona)
    assert preflight(client, URL, PARTNER)[ACAO] == PARTNER  # loads the index
    with django_assert_num_queries(0):
        assert preflight(client, URL, PARTNER)[ACAO] == PARTNER
        assert ACAO not in preflight(client, URL, STRANGER)
        persona_url = "/voice-widget/api/personas/ben/"
        assert preflight(client, persona_url, PARTNER, method="GET")[ACAO] == PARTNER
        end_url = f"/voice-widget/api/sessions/{conversation.pk}/end/"
        assert preflight(client, end_url, PARTNER)[ACAO] == PARTNER


def test_saving_a_persona_shares_its_new_origin_at_once(client, persona):
    newcomer = "https://newcomer.example.org"
    assert ACAO not in preflight(client, URL, newcomer)
    persona.allowed_origins += f"\n{newcomer}"
    persona.save()
    assert preflight(client, URL, newcomer)[ACAO] == newcomer
    persona.delete()
    assert ACAO not in preflight(client, URL, newcomer)


def test_another_processs_change_is_seen_once_the_index_is_old(client, persona, monkeypatch):
    from voice_widget.api import origins
    from voice_widget.models import Persona

    newcomer = "https://newcomer.example.org"
    assert ACAO not in preflight(client, URL, newcomer)
    # An update() sends no signal, as a save in another process reaches this one.
    Persona.objects.filter(pk=persona.pk).update(allowed_origins=newcomer)
    assert ACAO not in preflight(client, URL, newcomer)  # the index is still young
    monkeypatch.setattr(origins, "ORIGIN_INDEX_MAX_AGE", 0.0)
    assert preflight(client, URL, newcomer)[ACAO] == newcomer


@pytest.mark.django_db(transaction=True)
def test_under_asgi_a_stale_index_answers_while_a_thread_reloads_it(persona, monkeypatch):
    import threading

    from voice_widget.api import origins
    from voice_widget.models import Persona

    client = AsyncClient()
    newcomer = "https://newcomer.example.org"
    headers = {"Origin": newcomer, "Access-Control-Request-Method": "POST"}
    assert ACAO not in async_to_sync(client.options)(URL, headers=headers)  # loaded in a thread
    Persona.objects.filter(pk=persona.pk).update(allowed_origins=newcomer)
    monkeypatch.setattr(origins, "ORIGIN_INDEX_MAX_AGE", 0.0)
    loads = []
    real_load = origins._OriginIndex._load

    def load(self):
        loads.append(threading.current_thread().name)
        real_load(self)

    monkeypatch.setattr(origins._OriginIndex, "_load", load)
    # The old index answers at once; the reload runs on the CORS thread, not the event loop.
    assert ACAO not in async_to_sync(client.options)(URL, headers=headers)
    origins._index._refreshing.result(timeout=5)
    assert loads and all(name.startswith("voice-widget-cors") for name in loads)
    monkeypatch.setattr(origins, "ORIGIN_INDEX_MAX_AGE", 60.0)
    assert async_to_sync(client.options)(URL, headers=headers)[ACAO] == newcomer


def test_an_origin_with_a_path_is_still_refused_by_validation():
    from django.core.exceptions import ValidationError

    from voice_widget.validators import validate_origins_text

    validate_origins_text("https://Shop.Example.com/ https://a.example:8443")
    with pytest.raises(ValidationError):
        validate_origins_text("https://shop.example.com/path")
