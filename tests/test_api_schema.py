"""GET /voice-widget/api/schema/: an OpenAPI 3 document of the widget API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def test_schema_is_openapi_3_listing_every_widget_endpoint(client):
    response = client.get("/voice-widget/api/schema/")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) >= {
        "/voice-widget/api/sessions/",
        "/voice-widget/api/sessions/{conversation_id}/end/",
        "/voice-widget/api/sessions/{conversation_id}/feedback/",
        "/voice-widget/api/sessions/{conversation_id}/resume/",
        "/voice-widget/api/personas/{slug}/",
        "/voice-widget/api/health/",
        "/voice-widget/api/livekit/webhook/",
    }
    assert "post" in paths["/voice-widget/api/sessions/"]
    assert "get" in paths["/voice-widget/api/health/"]


def test_schema_documents_the_session_request_and_response(client):
    schema = client.get("/voice-widget/api/schema/").json()
    operation = schema["paths"]["/voice-widget/api/sessions/"]["post"]
    assert {"201", "400", "403", "404", "413", "429", "503"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    assert set(components["SessionResponse"]["properties"]) == {
        "conversation",
        "server_url",
        "participant_token",
        "room_name",
        "identity",
        "expires_at",
        "end_url",
        "status_url",
        "feedback_url",
        "resume_url",
        "resume_window",
        "end_key",
    }
    assert set(components["SessionRequest"]["properties"]) == {
        "persona",
        "context",
        "signed_context",
        "page_url",
        "consent",
        "clicked",
    }


def _formats(schema):
    return {schema.get("format")} | {
        choice.get("format") for choice in schema.get("oneOf", []) + schema.get("anyOf", [])
    }


def test_schema_says_page_url_is_a_uri_and_end_key_how_long_it_may_be(client):
    components = client.get("/voice-widget/api/schema/").json()["components"]["schemas"]
    assert "uri" in _formats(components["SessionRequest"]["properties"]["page_url"])
    assert components["SessionResponse"]["properties"]["end_key"]["maxLength"] == 200
    assert components["SessionEndRequest"]["properties"]["end_key"]["maxLength"] == 200


def test_schema_describes_no_catch_all_path(client):
    paths = client.get("/voice-widget/api/schema/").json()["paths"]
    assert all("{" not in path or path.endswith("/") for path in paths)
    assert not any(path.rstrip("/") == "/voice-widget/api" for path in paths)


def test_schema_only_describes_the_widget_api(client):
    schema = client.get("/voice-widget/api/schema/").json()
    assert all(path.startswith("/voice-widget/api/") for path in schema["paths"])
    assert schema["info"]["title"] == "django-voice-widget API"


@pytest.mark.urls("tests.api_host_urls")
def test_schema_leaves_out_the_host_projects_api_and_follows_its_mount_point(client):
    schema = client.get("/talk/api/schema/").json()
    assert "/shop-api/orders/" not in schema["paths"]
    assert "/talk/api/sessions/" in schema["paths"]
    assert all(path.startswith("/talk/api/") for path in schema["paths"])


SCHEMA_IN_A_FRESH_PROCESS = """
import json
import django
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()
from django.test import Client

response = Client().get("/voice-widget/api/schema/")
print(json.dumps({"status": response.status_code, "paths": sorted(response.json()["paths"])}))
"""


def test_schema_does_not_depend_on_the_hosts_default_schema_class():
    # A host that never set REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] to drf-spectacular's:
    # our views are imported under that setting, so this needs a process of its own.
    result = subprocess.run(
        [sys.executable, "-c", SCHEMA_IN_A_FRESH_PROCESS],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_host_rest_framework"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert "/voice-widget/api/sessions/" in answer["paths"]
    assert "/voice-widget/api/schema/" in answer["paths"]
