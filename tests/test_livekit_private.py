"""The livekit-agents internals the worker uses are listed in ``agent_runner.livekit_private``
and still have the shape it expects, so an upgrade of livekit-agents fails here first."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

pytest.importorskip("livekit.agents")

from agent_runner import livekit_private  # noqa: E402

pytestmark = pytest.mark.agent

AGENT_RUNNER = Path(livekit_private.__file__).parent
#: ``obj._name`` (or ``getattr(obj, "_name")``) on anything but ourselves.
PRIVATE_ACCESS = re.compile(r"(?<![\w.])(?!self\.|cls\.)(\w+)\.(_[a-z]\w*)|getattr\(\w+, \"(_\w+)")
PRIVATE_IMPORT = re.compile(r"from livekit[\w.]* import .*\b_[a-z]\w*|import livekit[\w.]*\._")
#: Public despite the underscore: Django's ``Model._meta``, ``os._exit``.
PUBLIC_PRIVATE = {"_meta", "_exit"}


def _resolve(name: str):
    module_name, _, qualified = name.partition(":")
    owner = importlib.import_module(module_name)
    *path, attribute = qualified.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, attribute


def test_every_private_livekit_name_in_use_is_listed_and_exists():
    assert livekit_private.PRIVATE_NAMES == ("livekit.agents.worker:AgentServer._connecting",)
    for name in livekit_private.PRIVATE_NAMES:
        owner, attribute = _resolve(name)
        assert attribute.startswith("_")
        # An instance attribute: set in __init__, kept by the connection task.
        assert f"self.{attribute}" in inspect.getsource(owner), name


def test_every_deprecated_livekit_name_in_use_is_listed_and_exists():
    from typing import get_args

    from livekit.agents.metrics import RealtimeModelMetrics
    from livekit.agents.voice.events import EventTypes

    assert livekit_private.DEPRECATED_NAMES == (
        "livekit.agents.voice.events:MetricsCollectedEvent",
    )
    for name in livekit_private.DEPRECATED_NAMES:
        owner, attribute = _resolve(name)
        assert hasattr(owner, attribute), name
    assert "metrics_collected" in get_args(EventTypes)
    # What the recorder reads of a realtime model's metrics.
    assert {"type", "request_id", "ttft"} <= set(RealtimeModelMetrics.model_fields)


async def test_model_metrics_reach_the_callback_without_the_deprecation_warning(caplog):
    from livekit.agents import AgentSession
    from livekit.agents.metrics import RealtimeModelMetrics
    from livekit.agents.voice.events import MetricsCollectedEvent

    session = AgentSession()
    received = []
    livekit_private.on_model_metrics(session, received.append)
    event = MetricsCollectedEvent(
        metrics=RealtimeModelMetrics(
            request_id="resp_1",
            timestamp=0.0,
            ttft=0.3,
            input_token_details=RealtimeModelMetrics.InputTokenDetails(),
            output_token_details=RealtimeModelMetrics.OutputTokenDetails(),
        )
    )
    session.emit("metrics_collected", event)
    assert received == [event]
    assert "deprecated" not in caplog.text


def test_agent_server_connecting_flag_still_means_reconnecting():
    from livekit.agents import AgentServer

    server = AgentServer(ws_url="ws://127.0.0.1:1", api_key="k", api_secret="s")
    assert livekit_private.server_is_connecting(server) is False
    source = inspect.getsource(AgentServer._connection_task)
    # Set before each attempt, cleared once the register response arrived.
    assert source.index("self._connecting = True") < source.index("self._handle_register(")
    assert source.index("self._handle_register(") < source.index("self._connecting = False")
    assert list(inspect.signature(AgentServer._connection_task).parameters) == ["self"]


def test_no_other_module_reaches_into_livekit_privates():
    found = []
    for path in sorted(AGENT_RUNNER.rglob("*.py")):
        if path.name == "livekit_private.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            uses = [m.group(2) or m.group(3) for m in PRIVATE_ACCESS.finditer(code)]
            if [u for u in uses if u not in PUBLIC_PRIVATE] or PRIVATE_IMPORT.search(code):
                found.append(f"{path.relative_to(AGENT_RUNNER)}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        # The public surface agent_runner.serve relies on, by keyword.
        ("livekit.agents:AgentServer.run", ["self", "devmode", "unregistered"]),
        ("livekit.agents:AgentServer.drain", ["self", "timeout"]),
        ("livekit.agents:AgentServer.aclose", ["self"]),
        ("livekit.agents.cli.log:setup_logging", ["log_level", "devmode", "console", "compact"]),
        ("livekit.agents.cli:run_app", ["server"]),
        ("livekit.agents.__main__:main", ["argv"]),
        (
            "livekit.plugins.silero:VAD.update_options",
            [
                "self",
                "min_speech_duration",
                "min_silence_duration",
                "prefix_padding_duration",
                "max_buffered_speech",
                "activation_threshold",
                "deactivation_threshold",
            ],
        ),
    ],
)
def test_the_livekit_functions_the_worker_calls_keep_their_signatures(name, parameters):
    owner, attribute = _resolve(name)
    assert list(inspect.signature(getattr(owner, attribute)).parameters) == parameters
