"""voice_widget.urls: every path under api/ answers in the API's JSON shape."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/voice-widget/api/sessions/not-a-uuid/end/"),
        ("post", "/voice-widget/api/sessions/not-a-uuid/status/"),
        ("get", "/voice-widget/api/personas/b%20en/"),
        ("get", "/voice-widget/api/personas/ben/extra/"),
        ("get", "/voice-widget/api/nothing/"),
        ("delete", "/voice-widget/api/"),
    ],
)
def test_unknown_api_path_is_a_json_404(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "not_found"
    assert body["detail"]


def test_api_path_without_its_slash_still_redirects_to_the_endpoint(client):
    response = client.get("/voice-widget/api/health")
    assert response.status_code == 301
    assert response["Location"] == "/voice-widget/api/health/"


def test_paths_outside_the_api_are_left_to_the_host(client):
    response = client.get("/voice-widget/not-the-api/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
