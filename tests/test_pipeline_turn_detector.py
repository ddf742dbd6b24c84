"""The text turn-detector models: built inside the job, and missing files reported clearly."""

import json

import pytest

pytest.importorskip("livekit.agents")

import huggingface_hub.constants  # noqa: E402
from livekit.agents import LanguageCode, llm  # noqa: E402
from livekit.plugins.turn_detector.models import HG_MODEL, MODEL_REVISIONS  # noqa: E402

from agent_runner.pipeline import TextTurnDetector, turn_detector_files_missing  # noqa: E402
from tests.doubles.livekit_room import RoomDouble, job_context  # noqa: E402

pytestmark = pytest.mark.agent

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root, model_type, languages=None):
    """The layout huggingface_hub leaves after `download-files` (refs → snapshot files)."""
    repo = root / f"models--{HG_MODEL.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / MODEL_REVISIONS[model_type]).write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    (snapshot / "onnx").mkdir(parents=True, exist_ok=True)
    (snapshot / "onnx" / "model_q8.onnx").write_bytes(b"onnx")
    (snapshot / "tokenizer_config.json").write_text("{}")
    (snapshot / "languages.json").write_text(json.dumps(languages or {"en": {"threshold": 0.1}}))
    return root


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache for this test only (nothing downloaded)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("LIVEKIT_REMOTE_EOT_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize("kind", ["multilingual", "english"])
def test_missing_model_files_tell_the_worker_to_download_them(hub_cache, kind):
    message = turn_detector_files_missing({"turn_detection": kind})
    assert "run `python manage.py run_voice_agent download-files`" in message
    assert f"{kind} turn-detector model" in message


def test_downloaded_files_are_found(hub_cache):
    fake_hub_cache(hub_cache, "multilingual")
    assert turn_detector_files_missing({"turn_detection": "multilingual"}) is None


def test_files_of_the_other_model_do_not_count(hub_cache):
    fake_hub_cache(hub_cache, "multilingual")
    assert turn_detector_files_missing({"turn_detection": "english"}) is not None


def test_explicit_cache_dir(tmp_path):
    fake_hub_cache(tmp_path, "en")
    assert (
        turn_detector_files_missing({"turn_detection": "english"}, cache_dir=str(tmp_path)) is None
    )


@pytest.mark.parametrize(
    "persona",
    [
        {"turn_detection": "audio"},
        {"turn_detection": "vad"},
        {"turn_detection": "stt"},
        {"pipeline_kind": "realtime", "turn_detection": "realtime_llm"},
    ],
)
def test_modes_without_text_models_need_no_files(hub_cache, persona):
    assert turn_detector_files_missing(persona) is None


async def test_text_detector_without_files_fails_with_the_download_hint(hub_cache):
    detector = TextTurnDetector("multilingual")
    with pytest.raises(RuntimeError, match="download-files"):
        detector.load()


async def test_without_files_the_session_falls_back_to_pauses(hub_cache, caplog):
    detector = TextTurnDetector("english")
    assert await detector.supports_language(LanguageCode("en")) is False
    assert await detector.supports_language(LanguageCode("en")) is False
    [record] = [r for r in caplog.records if "turn-detector model unavailable" in r.message]
    assert "download-files" in record.getMessage()


class InferenceExecutorDouble:
    """The job's inference executor: answers the turn-detector model's inference requests."""

    def __init__(self, probability):
        self.probability = probability
        self.calls = []

    async def do_inference(self, method, data):
        self.calls.append((method, json.loads(data)))
        return json.dumps({"eou_probability": self.probability}).encode()


async def test_text_detector_builds_the_plugin_model_inside_the_job(hub_cache):
    fake_hub_cache(hub_cache, "multilingual", languages={"de": {"threshold": 0.245}})
    detector = TextTurnDetector("multilingual")
    with job_context(RoomDouble()) as job:
        job.inference_executor = InferenceExecutorDouble(probability=0.93)
        assert await detector.supports_language(LanguageCode("de-DE")) is True
        assert await detector.unlikely_threshold(LanguageCode("de")) == 0.245
        chat = llm.ChatContext.empty()
        chat.add_message(role="user", content="Ich hätte gern eine Probefahrt")
        assert await detector.predict_end_of_turn(chat) == 0.93

    from livekit.plugins.turn_detector.multilingual import MultilingualModel

    assert isinstance(detector.load(), MultilingualModel)
    [(method, request)] = job.inference_executor.calls
    assert method == "lk_end_of_utterance_multilingual"
    assert request["chat_ctx"][-1]["content"] == "Ich hätte gern eine Probefahrt"


def test_admin_knows_the_audio_models_languages():
    from livekit.agents.inference.eot.languages import LOCAL_LANGUAGES

    from voice_widget.models import AUDIO_TURN_DETECTOR_LANGUAGES

    assert set(LOCAL_LANGUAGES) == AUDIO_TURN_DETECTOR_LANGUAGES
