import pytest


@pytest.fixture
def livekit_env_clear(monkeypatch):
    """No LiveKit variables in the environment, so only settings count."""
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
