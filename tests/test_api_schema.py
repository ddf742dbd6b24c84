"""GET /voice-widget/api/schema/: an OpenAPI 3 document of the widget API."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_is_openapi_3_listing_every_widget_endpoint(client):
    response = client.get("/voice-widget/api/schema/")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) >= {
        "/voice-widget/api/sessions/",
        "/voice-widget/api/sessions/{conversation_id}/end/",
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
        "end_key",
    }
    assert set(components["SessionRequest"]["properties"]) == {
        "persona",
        "context",
        "signed_context",
        "page_url",
    }


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
