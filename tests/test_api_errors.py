"""voice_widget/api/errors.py: refusals the widget can read, a database outage included."""

import uuid
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError
from django.db.backends.utils import CursorWrapper

from tests.api_support import (
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
    post_json,
)
from tests.factories import make_persona

pytestmark = pytest.mark.django_db

PARTNER = "https://partner.example.com"
UNKNOWN_CONVERSATION = uuid.UUID(int=1)


def start_session(client, **extra):
    return post_json(client, "/voice-widget/api/sessions/", {"persona": "ben"}, **extra)


ENDPOINTS = {
    "sessions": start_session,
    "persona": lambda client, **extra: client.get("/voice-widget/api/personas/ben/", **extra),
    "health": lambda client, **extra: client.get("/voice-widget/api/health/", **extra),
    "end": lambda client, **extra: post_json(
        client, f"/voice-widget/api/sessions/{UNKNOWN_CONVERSATION}/end/", {"end_key": "k"}, **extra
    ),
    "status": lambda client, **extra: post_json(
        client,
        f"/voice-widget/api/sessions/{UNKNOWN_CONVERSATION}/status/",
        {"end_key": "k"},
        **extra,
    ),
}


def database_down(error=OperationalError):
    """Every query fails as it does when the database server is unreachable."""
    return mock.patch.object(
        CursorWrapper, "execute", side_effect=error("server closed the connection unexpectedly")
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_database_outage_is_503_json_the_embedding_page_can_read(client, endpoint):
    make_persona(slug="ben", allowed_origins=PARTNER)
    request = ENDPOINTS[endpoint]
    with database_down():
        response = request(client, HTTP_ORIGIN=PARTNER)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "database_unavailable"
    assert response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    assert response["Access-Control-Allow-Origin"] == PARTNER


def test_interface_error_is_a_database_outage_too(client):
    make_persona(slug="ben")
    with database_down(InterfaceError):
        response = start_session(client)
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"


def test_the_request_after_an_outage_succeeds(client, worker_alive):
    make_persona(slug="ben", allowed_origins=PARTNER)
    with database_down():
        assert start_session(client, HTTP_ORIGIN=PARTNER).status_code == 503
    response = start_session(client, HTTP_ORIGIN=PARTNER)
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == PARTNER


def test_preflight_during_an_outage_lets_the_request_through(client):
    with database_down():
        response = client.options(
            "/voice-widget/api/sessions/",
            HTTP_ORIGIN=PARTNER,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
        )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == PARTNER
