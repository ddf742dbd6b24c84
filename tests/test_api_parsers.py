"""voice_widget/api/parsers.py: bodies over the API's bound are refused, unread or half-read."""

import io

import pytest
from django.test import RequestFactory
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from tests.api_support import (
    assert_refused,
    fresh_throttle_cache,  # noqa: F401 - autouse fixture
)
from tests.factories import make_conversation, make_persona
from voice_widget.api.errors import RequestTooLarge
from voice_widget.api.parsers import BoundedMultiPartParser, max_body_bytes

pytestmark = pytest.mark.django_db

HUNDRED_MEGABYTES = 100 * 1024 * 1024


class UnreadableBody:
    """A request body that must not be read: the test fails if anything tries."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def post_declaring(client, url, content_length, content_type, **extra):
    return client.generic(
        "POST",
        url,
        content_type=content_type,
        CONTENT_LENGTH=str(content_length),
        **{"wsgi.input": UnreadableBody()},
        **extra,
    )


@pytest.fixture
def conversation():
    return make_conversation(make_persona(slug="ben", allowed_origins="https://partner.example"))


def test_multipart_end_request_declaring_100_mb_is_413_without_reading_it(client, conversation):
    response = post_declaring(
        client,
        f"/voice-widget/api/sessions/{conversation.pk}/end/",
        HUNDRED_MEGABYTES,
        MULTIPART_CONTENT,
        HTTP_ORIGIN="https://partner.example",
    )
    assert_refused(response, 413, "request_too_large", conversations=1)
    assert str(max_body_bytes()) in response.json()["detail"]
    assert response["Access-Control-Allow-Origin"] == "https://partner.example"


@pytest.mark.parametrize(
    "url",
    [
        "/voice-widget/api/sessions/",
        "/voice-widget/api/sessions/00000000-0000-0000-0000-000000000001/status/",
        "/voice-widget/api/livekit/webhook/",
    ],
)
def test_every_endpoint_refuses_a_declared_oversized_body_unread(client, conversation, url):
    response = post_declaring(client, url, max_body_bytes() + 1, "application/json")
    assert_refused(response, 413, "request_too_large", conversations=1)


def test_multipart_body_over_the_bound_is_413_while_reading():
    # A stream longer than its Content-Length said (or a chunked upload): the parser reads
    # one byte past the bound and stops, where Django's would spool any size to disk.
    body = encode_multipart(BOUNDARY, {"end_key": "k", "padding": "x" * (2 * max_body_bytes())})
    stream = io.BytesIO(body)
    request = RequestFactory().generic("POST", "/", body, content_type=MULTIPART_CONTENT)
    request.upload_handlers = []
    with pytest.raises(RequestTooLarge):
        BoundedMultiPartParser().parse(stream, MULTIPART_CONTENT, {"request": request})
    assert stream.tell() == max_body_bytes() + 1


def test_multipart_body_within_the_bound_is_parsed():
    body = encode_multipart(BOUNDARY, {"end_key": "k", "reason": "participant_left"})
    request = RequestFactory().generic("POST", "/", body, content_type=MULTIPART_CONTENT)
    request.upload_handlers = []
    parsed = BoundedMultiPartParser().parse(
        io.BytesIO(body), MULTIPART_CONTENT, {"request": request}
    )
    assert parsed.data["end_key"] == "k" and parsed.data["reason"] == "participant_left"
