"""voice_widget.tokens: what a minted token lets its holder do, verified with TokenVerifier."""

import base64
import json
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from livekit.api import AccessToken, RoomAgentDispatch, RoomConfiguration, TokenVerifier

from tests.api_support import raw_claims, verifier
from voice_widget.conf import vw_settings
from voice_widget.tokens import (
    dispatch_metadata,
    mint_participant_token,
    new_identity,
    new_room_name,
    visitor_grants,
)


def mint(**overrides):
    fields = {
        "room_name": "vw-room-under-test",
        "identity": "visitor-abc",
        "conversation_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "display_name": "Visitor",
    }
    fields.update(overrides)
    return mint_participant_token(**fields)


def test_token_identity_name_and_room_are_the_conversations():
    claims = verifier().verify(mint().jwt)
    assert claims.identity == "visitor-abc"
    assert claims.name == "Visitor"
    assert claims.video.room == "vw-room-under-test"
    assert claims.video.room_join is True


def test_token_grants_only_joining_publishing_the_microphone_subscribing_and_data():
    video = verifier().verify(mint().jwt).video
    assert video.can_publish is True
    assert video.can_publish_sources == ["microphone"]
    assert video.can_subscribe is True
    assert video.can_publish_data is True
    for absent in (
        "room_create",
        "room_list",
        "room_record",
        "room_admin",
        "destination_room",
        "can_update_own_metadata",
        "ingress_admin",
        "hidden",
        "recorder",
        "agent",
        "can_manage_agent_session",
        "can_subscribe_metrics",
    ):
        assert getattr(video, absent) is None, absent


def test_token_carries_no_claims_beyond_the_visitor_grants_and_room_config():
    claims = raw_claims(mint().jwt)
    assert set(claims) == {"sub", "iss", "nbf", "exp", "name", "video", "roomConfig"}
    assert set(claims["video"]) == {
        "roomJoin",
        "room",
        "canPublish",
        "canPublishSources",
        "canSubscribe",
        "canPublishData",
    }
    parsed = verifier().verify(mint().jwt)
    assert parsed.sip.admin is False and parsed.sip.call is False
    assert parsed.inference.perform is False
    assert parsed.observability.write is False
    assert parsed.agent is None and parsed.agent_endpoint is None and parsed.agent_thread is None


def test_token_lifetime_is_token_ttl_and_expires_at_matches(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "TOKEN_TTL": 90}
    before = datetime.now(UTC).replace(microsecond=0)
    token = mint()
    claims = raw_claims(token.jwt)
    assert claims["exp"] - claims["nbf"] == 90
    assert abs(claims["exp"] - token.expires_at.timestamp()) <= 1
    assert token.expires_at >= before + timedelta(seconds=90)


def test_token_dispatches_the_configured_agent_with_only_the_conversation_id(settings):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "AGENT_NAME": "shop-agent"}
    config = verifier().verify(mint().jwt).room_config
    assert len(config.agents) == 1
    assert config.agents[0].agent_name == "shop-agent"
    assert json.loads(config.agents[0].metadata) == {
        "conversation": "12345678-1234-5678-1234-567812345678"
    }


def test_token_room_config_has_the_limits_from_settings(settings):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "ROOM_EMPTY_TIMEOUT": 45,
        "ROOM_DEPARTURE_TIMEOUT": 7,
        "ROOM_MAX_PARTICIPANTS": 3,
    }
    config = verifier().verify(mint().jwt).room_config
    assert config.name == "vw-room-under-test"
    assert config.empty_timeout == 45
    assert config.departure_timeout == 7
    assert config.max_participants == 3


def test_token_is_signed_with_the_configured_secret_only():
    token = mint().jwt
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier("APItestkey", "another-secret-that-is-long-enough-0123456789").verify(token)
    with pytest.raises(jwt.InvalidIssuerError):
        TokenVerifier("other-key", "test-secret-that-is-long-enough-for-livekit-0123456789").verify(
            token
        )


def test_every_room_name_is_new():
    names = {new_room_name() for _ in range(1000)}
    assert len(names) == 1000
    assert all(name.startswith("vw-") for name in names)


def test_identity_of_anonymous_visitors_and_of_users(django_user_model):
    assert new_identity(None).startswith("visitor-")
    user = django_user_model(pk=42, username="ann")
    identity = new_identity(user)
    assert identity.startswith("user-42-")
    assert identity != new_identity(user)


def test_dispatch_metadata_is_json_with_the_conversation_key():
    conversation_id = uuid.uuid4()
    assert json.loads(dispatch_metadata(conversation_id)) == {"conversation": str(conversation_id)}


def test_dispatch_metadata_says_when_the_visitor_clicked_before_the_request():
    conversation_id = uuid.uuid4()
    assert json.loads(dispatch_metadata(conversation_id, clicked=True)) == {
        "conversation": str(conversation_id),
        "clicked": True,
    }


def test_dev_secret_signs_without_pyjwts_short_key_warning(settings, livekit_env_clear):
    # livekit-server --dev's secret is 6 bytes; every dev token used to print a warning.
    settings.DEBUG = True
    settings.VOICE_WIDGET = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", jwt.warnings.InsecureKeyLengthWarning)
        token = mint()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)  # our verifier's
        assert TokenVerifier("devkey", "secret").verify(token.jwt).identity


def test_other_short_secrets_still_warn(settings, livekit_env_clear):
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "LIVEKIT_API_SECRET": "too-short"}
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        mint()


def livekit_api_token(*, dispatch: bool, display_name: str = "Visitor") -> str:
    """The token livekit-api's own ``AccessToken`` makes from what ``mint`` passes."""
    token = (
        AccessToken(vw_settings.LIVEKIT_API_KEY, vw_settings.LIVEKIT_API_SECRET)
        .with_identity("visitor-abc")
        .with_name(display_name)
        .with_ttl(timedelta(seconds=vw_settings.TOKEN_TTL))
        .with_grants(visitor_grants("vw-room-under-test"))
    )
    if dispatch:
        conversation_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
        token = token.with_room_config(
            RoomConfiguration(
                name="vw-room-under-test",
                empty_timeout=vw_settings.ROOM_EMPTY_TIMEOUT,
                departure_timeout=vw_settings.ROOM_DEPARTURE_TIMEOUT,
                max_participants=vw_settings.ROOM_MAX_PARTICIPANTS,
                agents=[
                    RoomAgentDispatch(
                        agent_name=vw_settings.AGENT_NAME,
                        metadata=dispatch_metadata(conversation_id),
                    )
                ],
            )
        )
    return token.to_jwt()


def header_and_ordered_claims(token: str) -> tuple[list, list]:
    """The JWT's header and claims as (key, value) pairs in the order they were written,
    with the times replaced by their difference (two tokens made a second apart differ)."""
    header, payload, _signature = token.split(".")

    def decoded(segment: str) -> list:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw, object_pairs_hook=list)

    claims = decoded(payload)
    times = dict(pair for pair in claims if pair[0] in ("nbf", "exp"))
    lifetime = times["exp"] - times["nbf"]
    claims = [[key, lifetime if key in ("nbf", "exp") else value] for key, value in claims]
    return decoded(header), claims


@pytest.mark.parametrize("dispatch", [True, False])
@pytest.mark.parametrize("display_name", ["Visitor", ""])
def test_token_is_the_one_livekit_apis_access_token_makes(settings, dispatch, display_name):
    settings.VOICE_WIDGET = {
        **settings.VOICE_WIDGET,
        "TOKEN_TTL": 321,
        "ROOM_EMPTY_TIMEOUT": 45,
        "ROOM_DEPARTURE_TIMEOUT": 0,  # livekit-api leaves zeros out
        "AGENT_NAME": "shop-agent",
    }
    ours = mint(dispatch=dispatch, display_name=display_name).jwt
    theirs = livekit_api_token(dispatch=dispatch, display_name=display_name)
    assert header_and_ordered_claims(ours) == header_and_ordered_claims(theirs)


def test_token_settings_changed_between_tokens_apply_to_the_next(settings):
    assert verifier().verify(mint().jwt).room_config.agents[0].agent_name != "other-agent"
    settings.VOICE_WIDGET = {**settings.VOICE_WIDGET, "AGENT_NAME": "other-agent"}
    config = verifier().verify(mint(room_name="vw-second").jwt).room_config
    assert config.agents[0].agent_name == "other-agent"
    assert config.name == "vw-second"


def test_minting_needs_an_identity_and_a_room():
    with pytest.raises(ValueError, match="identity and room"):
        mint(identity="")
    with pytest.raises(ValueError, match="identity and room"):
        mint(room_name="")
