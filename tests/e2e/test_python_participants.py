"""Two participants of LiveKit's Python SDK meet in one room of the server double: audio,
an RPC call and a text stream flow from one to the other through it."""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc

from tests.e2e.conftest import connected, loudest_sample, sine_publisher, subscribed_track, token

pytestmark = pytest.mark.e2e


async def test_audio_rpc_and_text_stream_flow_between_two_python_participants(livekit):
    async with (
        connected(livekit.url, token("alice", "py-room")) as alice,
        connected(livekit.url, token("bob", "py-room")) as bob,
    ):
        assert "alice" in bob.remote_participants
        await asyncio.wait_for(_until(lambda: "bob" in alice.remote_participants), 10)

        # audio: alice's sine wave reaches bob, not silence
        async with sine_publisher(alice):
            track = await subscribed_track(bob, "alice")
            assert await loudest_sample(track) > 3000
            publication = next(iter(alice.local_participant.track_publications.values()))
            assert publication.sid.startswith("TR_")

        # attributes: alice's update reaches bob
        await asyncio.wait_for(alice.local_participant.set_attributes({"mood": "curious"}), 10)
        await asyncio.wait_for(
            _until(lambda: bob.remote_participants["alice"].attributes.get("mood") == "curious"),
            10,
        )

        # RPC: alice calls a method bob registered
        calls = []

        async def greet(data: rtc.RpcInvocationData) -> str:
            calls.append((data.caller_identity, data.payload))
            return f"hello {data.payload}"

        bob.local_participant.register_rpc_method("greet", greet)
        answer = await asyncio.wait_for(
            alice.local_participant.perform_rpc(
                destination_identity="bob", method="greet", payload="alice"
            ),
            10,
        )
        assert answer == "hello alice"
        assert calls == [("alice", "alice")]

        # a text stream on a topic
        loop = asyncio.get_running_loop()
        received: asyncio.Future[tuple[str, str]] = loop.create_future()

        async def read(reader: rtc.TextStreamReader, sender: str) -> None:
            received.set_result((sender, await reader.read_all()))

        bob.register_text_stream_handler(
            "lk.chat", lambda reader, sender: asyncio.ensure_future(read(reader, sender))
        )
        await alice.local_participant.send_text("the double forwards streams", topic="lk.chat")
        assert await asyncio.wait_for(received, 10) == ("alice", "the double forwards streams")

    sent = [(d["sender"], d["value"], d["topic"]) for d in livekit.data_log]
    assert ("alice", "stream_header", "lk.chat") in sent
    assert ("alice", "rpc_request", "") in sent and ("bob", "rpc_response", "") in sent
    await livekit.wait_for(lambda: "py-room" not in livekit.rooms, 10)
    assert [join["identity"] for join in livekit.joins] == ["alice", "bob"]
    assert livekit.joins[0]["created_room"] and not livekit.joins[1]["created_room"]


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.05)


async def test_room_service_deletes_a_room_and_its_participants_leave(livekit):
    from livekit import api

    from tests.e2e.conftest import API_KEY, API_SECRET

    async with connected(livekit.url, token("carol", "doomed-room")) as carol:
        left = asyncio.Event()
        carol.on("disconnected", lambda reason: left.set())
        service = api.LiveKitAPI(livekit.url.replace("ws://", "http://"), API_KEY, API_SECRET)
        try:
            await service.room.delete_room(api.DeleteRoomRequest(room="doomed-room"))
            with pytest.raises(api.TwirpError) as missing:
                await service.room.delete_room(api.DeleteRoomRequest(room="doomed-room"))
        finally:
            await service.aclose()
        await asyncio.wait_for(left.wait(), 10)
    assert missing.value.code == "not_found"
    assert livekit.delete_room_requests == ["doomed-room", "doomed-room"]
    assert "doomed-room" not in livekit.rooms


async def test_room_service_send_data_reaches_participants_as_sent_by_the_server(livekit):
    from livekit import api

    from tests.e2e.conftest import API_KEY, API_SECRET

    async with (
        connected(livekit.url, token("dave", "data-room")) as dave,
        connected(livekit.url, token("erin", "data-room")) as erin,
    ):
        received: dict[str, list[rtc.DataPacket]] = {"dave": [], "erin": []}
        dave.on("data_received", received["dave"].append)
        erin.on("data_received", received["erin"].append)
        service = api.LiveKitAPI(livekit.url.replace("ws://", "http://"), API_KEY, API_SECRET)
        try:
            await service.room.send_data(
                api.SendDataRequest(
                    room="data-room",
                    data=b'{"action": "end"}',
                    kind=api.DataPacket.Kind.RELIABLE,
                    topic="voice_widget.control",
                    destination_identities=["erin"],
                )
            )
            with pytest.raises(api.TwirpError) as missing:
                await service.room.send_data(
                    api.SendDataRequest(room="no-such-room", data=b"{}", topic="t")
                )
        finally:
            await service.aclose()
        await asyncio.wait_for(_until(lambda: received["erin"]), 10)
        await asyncio.sleep(0.3)

    (packet,) = received["erin"]
    assert (packet.participant, packet.topic, packet.data) == (
        None,
        "voice_widget.control",
        b'{"action": "end"}',
    )
    assert received["dave"] == []  # not a destination
    assert missing.value.code == "not_found"
    assert [r.room for r in livekit.send_data_requests] == ["data-room", "no-such-room"]
