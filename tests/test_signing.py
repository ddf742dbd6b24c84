import pytest
from django.core import signing

from voice_widget.signing import SignedContextMismatch, sign_context, unsign_context


def test_signed_context_round_trips():
    token = sign_context({"first_name": "Ana", "product": "linden-city"}, persona="paula")
    assert unsign_context(token, persona="paula") == {
        "first_name": "Ana",
        "product": "linden-city",
    }


def test_tampered_context_is_rejected():
    token = sign_context({"first_name": "Ana"}, persona="paula")
    with pytest.raises(signing.BadSignature):
        unsign_context(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), persona="paula")


def test_context_signed_for_another_purpose_is_rejected():
    token = signing.dumps({"first_name": "Ana"})  # default salt
    with pytest.raises(signing.BadSignature):
        unsign_context(token, persona="paula")


def test_context_signed_before_it_was_bound_to_a_persona_is_rejected():
    token = signing.dumps({"first_name": "Ana"}, salt="voice_widget.signed_context")
    with pytest.raises(signing.BadSignature):
        unsign_context(token, persona="paula")


def test_expired_context_is_rejected():
    token = sign_context({"a": 1}, persona="paula")
    with pytest.raises(signing.SignatureExpired):
        unsign_context(token, persona="paula", max_age=-1)


def test_context_signed_for_one_persona_is_refused_for_another():
    token = sign_context({"discount": "staff"}, persona="paula")
    with pytest.raises(SignedContextMismatch, match="another assistant"):
        unsign_context(token, persona="ben")


def test_context_signed_for_a_user_is_only_accepted_for_that_user():
    token = sign_context({"first_name": "Ana"}, persona="paula", user_id=7)
    assert unsign_context(token, persona="paula", user_id=7) == {"first_name": "Ana"}
    with pytest.raises(SignedContextMismatch, match="another user"):
        unsign_context(token, persona="paula", user_id=8)
    with pytest.raises(SignedContextMismatch, match="another user"):
        unsign_context(token, persona="paula", user_id=None)


def test_context_signed_for_an_anonymous_page_is_accepted_for_anyone():
    token = sign_context({"product": "linden-city"}, persona="paula")
    assert unsign_context(token, persona="paula", user_id=7) == {"product": "linden-city"}
