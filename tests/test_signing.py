import pytest
from django.core import signing

from voice_widget.signing import sign_context, unsign_context


def test_signed_context_round_trips():
    token = sign_context({"first_name": "Ana", "product": "linden-city"})
    assert unsign_context(token) == {"first_name": "Ana", "product": "linden-city"}


def test_tampered_context_is_rejected():
    token = sign_context({"first_name": "Ana"})
    with pytest.raises(signing.BadSignature):
        unsign_context(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_context_signed_for_another_purpose_is_rejected():
    token = signing.dumps({"first_name": "Ana"})  # default salt
    with pytest.raises(signing.BadSignature):
        unsign_context(token)


def test_expired_context_is_rejected():
    token = sign_context({"a": 1})
    with pytest.raises(signing.SignatureExpired):
        unsign_context(token, max_age=-1)
