import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_the_text_turn_detectors_move_to_the_turn_detector_model_or_voice_activity():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("voice_widget", "0002_persona_defaults_and_voice_help")]
    after = [("voice_widget", "0003_turn_detection_model")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    Persona = executor.loader.project_state(before).apps.get_model("voice_widget", "Persona")
    old = {
        "en-text": ("english", "en-US", "pipeline"),
        "de-text": ("multilingual", "de", "pipeline"),
        "sv-text": ("multilingual", "sv-SE", "pipeline"),
        "pl-audio": ("audio", "pl", "pipeline"),
        "fi-stt": ("stt", "fi", "pipeline"),
        "realtime-text": ("multilingual", "en", "realtime"),
    }
    for slug, (turn_detection, language, kind) in old.items():
        Persona.objects.create(
            name=slug,
            slug=slug,
            turn_detection=turn_detection,
            language=language,
            pipeline_kind=kind,
        )

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    Persona = executor.loader.project_state(after).apps.get_model("voice_widget", "Persona")
    assert dict(Persona.objects.values_list("slug", "turn_detection")) == {
        "en-text": "audio",
        "de-text": "audio",
        "sv-text": "vad",
        "pl-audio": "vad",
        "fi-stt": "stt",
        "realtime-text": "realtime_llm",
    }
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_personas_get_a_first_version_when_history_begins():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    history_begins = "0006_persona_history_tests_retention"
    executor = MigrationExecutor(connection)
    before = [
        node.key
        for node in executor.loader.graph.node_map[("voice_widget", history_begins)].parents
        if node.key[0] == "voice_widget"
    ]
    executor.migrate(before)
    Persona = executor.loader.project_state(before).apps.get_model("voice_widget", "Persona")
    Persona.objects.create(name="Old", slug="old", instructions="The prompt before history.")

    executor = MigrationExecutor(connection)
    after = [("voice_widget", history_begins)]
    executor.migrate(after)
    apps = executor.loader.project_state(after).apps
    [version] = apps.get_model("voice_widget", "HistoricalPersona").objects.all()
    assert (version.slug, version.instructions) == ("old", "The prompt before history.")
    assert version.history_type == "+"
    assert version.id == apps.get_model("voice_widget", "Persona").objects.get().pk
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
