"""``LiveKitServerDouble``: a LiveKit server double for tests, at one base URL on 127.0.0.1.

It is no SFU anyone should deploy: it implements just enough of LiveKit for this project's
worker and widget to meet in one room during a test.

``/agent``
    LiveKit's agent-worker protocol (protobuf ``WorkerMessage`` / ``ServerMessage`` over a
    websocket): registration, worker status, ping/pong, availability and job status. A
    participant whose token carries ``roomConfig.agents`` and thereby *creates* a room gets
    those agents dispatched (``AvailabilityRequest`` → ``JobAssignment`` with a token minted
    for the agent participant); a token dispatch into an existing room is ignored, as real
    LiveKit does.

``/rtc``
    Signalling (protobuf ``SignalRequest`` / ``SignalResponse``) plus WebRTC through aiortc:
    each participant has a publisher peer connection (the client offers) and a subscriber
    one (the double offers, ``subscriber_primary``). Audio/video published by one participant
    is relayed to every other; data packets (``_reliable`` / ``_lossy``: RPC, chat, data
    streams) are forwarded to the others, or to ``destination_identities``.

``/twirp/livekit.RoomService/DeleteRoom`` and ``SendData``
    The two RoomService calls the web side makes (Twirp, protobuf bodies), with the token's
    grants checked: deleting a conversation's room, and a data packet from the server.

``/rtc/v1`` answers 404, so both SDKs fall back to ``/rtc``. WebRTC candidates: the double
offers only 127.0.0.1 host candidates and ignores clients' candidates outside 127.0.0.0/8;
the peers must run where libwebrtc sees a non-loopback interface with a 127.x address (see
``scripts/netns-run.sh``). The signalling and ``/agent`` parts work anywhere.

Tests read ``registrations``, ``workers``, ``dispatches``, ``job_updates``, ``rooms``,
``joins``, ``signal_log``, ``data_log`` and ``send_data_requests``; ``registered``,
``wait_for(predicate)``, ``participant_joined(room, identity)`` and ``dispatched(room)`` help
waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from livekit import api
from livekit.protocol import agent, models, rtc

from tests.doubles.local_server import LocalServer

logger = logging.getLogger("tests.livekit_server_double")

SERVER_VERSION = "1.9.0"
PROTOCOL_VERSION = 16
DEFAULT_API_KEY = "double-key"
DEFAULT_API_SECRET = "double-secret-double-secret-double-secret"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "*",
}
KINDS = {
    "": models.ParticipantInfo.Kind.STANDARD,
    "standard": models.ParticipantInfo.Kind.STANDARD,
    "ingress": models.ParticipantInfo.Kind.INGRESS,
    "egress": models.ParticipantInfo.Kind.EGRESS,
    "sip": models.ParticipantInfo.Kind.SIP,
    "agent": models.ParticipantInfo.Kind.AGENT,
}
NEGOTIATION_TIMEOUT = 10.0


def _sid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.contextmanager
def only_loopback_ice_candidates() -> Iterator[None]:
    """aioice gathers (so aiortc offers) only 127.0.0.1 while the double runs."""
    import aioice.ice

    original = aioice.ice.get_host_addresses

    def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_only
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def strip_foreign_candidates(sdp: str) -> str:
    """Drops ``a=candidate`` lines whose address is not in 127.0.0.0/8."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 5 or not parts[4].startswith("127."):
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


# -- the agent side ----------------------------------------------------------------------


@dataclass
class WorkerConnection:
    worker_id: str
    agent_name: str
    ws: web.WebSocketResponse
    status: int = agent.WorkerStatus.WS_AVAILABLE
    load: float = 0.0
    job_count: int = 0
    pending: dict[str, asyncio.Future] = field(default_factory=dict)


@dataclass
class Dispatch:
    """One agent dispatch the double made (or tried to)."""

    room: str
    agent_name: str
    metadata: str
    job_id: str
    dispatch_id: str
    source: str = "token"
    worker_id: str = ""
    accepted: bool | None = None
    waiting_for_worker: bool = False
    participant_identity: str = ""
    assigned: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


# -- the room side -----------------------------------------------------------------------


@dataclass
class PublishedTrack:
    info: models.TrackInfo
    cid: str
    track: Any = None  # the aiortc track once it arrived
    subscribed_announced: bool = False


@dataclass
class Participant:
    info: models.ParticipantInfo
    room: Room
    ws: web.WebSocketResponse
    claims: Any
    publisher: Any = None  # RTCPeerConnection, the client offers
    subscriber: Any = None  # RTCPeerConnection, the double offers
    sub_channels: dict[str, Any] = field(default_factory=dict)
    sub_channel_backlog: dict[str, list[bytes]] = field(default_factory=dict)
    tracks: dict[str, PublishedTrack] = field(default_factory=dict)  # by track sid
    pending_tracks: dict[str, PublishedTrack] = field(default_factory=dict)  # by cid
    subscribed: set[str] = field(default_factory=set)  # track sids on the subscriber PC
    to_subscribe: list[tuple[Participant, PublishedTrack]] = field(default_factory=list)
    pending_candidates: dict[int, list[Any]] = field(default_factory=dict)
    sub_answer: asyncio.Future | None = None
    sub_negotiation_wanted: bool = False
    sub_offered: bool = False
    sub_negotiating: asyncio.Task | None = None
    sub_announce_after_answer: list[tuple[Participant, PublishedTrack]] = field(
        default_factory=list
    )
    send_queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    gone: bool = False

    @property
    def identity(self) -> str:
        return self.info.identity

    @property
    def sid(self) -> str:
        return self.info.sid


@dataclass
class Room:
    info: models.Room
    participants: dict[str, Participant] = field(default_factory=dict)  # by identity

    @property
    def name(self) -> str:
        return self.info.name


@web.middleware
async def _cors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    if not isinstance(response, web.WebSocketResponse) and not response.prepared:
        for key, value in CORS_HEADERS.items():
            response.headers.setdefault(key, value)
    return response


class LiveKitServerDouble(LocalServer):
    """``async with LiveKitServerDouble(api_key=..., api_secret=...) as livekit``.

    ``livekit.url`` is the ``ws://127.0.0.1:<port>`` URL both SDKs and the worker connect to.
    Without an API key/secret, tokens are read without checking their signature, and agent
    tokens are signed with ``DEFAULT_API_KEY`` / ``DEFAULT_API_SECRET``.
    """

    scheme = "ws"
    # livekit-client's request line (the token and client info) is about 10 kB.
    runner_options = {"max_line_size": 65536, "max_field_size": 65536}
    middlewares = (_cors_middleware,)

    def __init__(self, api_key: str | None = None, api_secret: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self.registrations: list[dict[str, Any]] = []
        self.registered = asyncio.Event()
        self.workers: dict[str, WorkerConnection] = {}
        self.dispatches: list[Dispatch] = []
        self.job_updates: list[dict[str, Any]] = []
        self.worker_updates: list[dict[str, Any]] = []
        self.rooms: dict[str, Room] = {}
        self.joins: list[dict[str, Any]] = []
        self.signal_log: list[tuple[str, str]] = []  # (identity, request kind)
        #: Fault injection: refuse the /rtc join of agent participants (kind "agent").
        self.refuse_agents = False
        self.refused_joins: list[str] = []
        #: Rooms asked to be deleted through RoomService (the web side's end endpoint does
        #: that), whether or not they still existed.
        self.delete_room_requests: list[str] = []
        self.data_log: list[dict[str, Any]] = []  # each data packet sent (sender "": the server)
        #: ``SendDataRequest``s received through RoomService (the live page's end button).
        self.send_data_requests: list[Any] = []
        self._changed = asyncio.Condition()
        self._worker_ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._relay: Any = None
        self._loopback_only: contextlib.ExitStack | None = None

    # -- LocalServer -------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/agent", self.agent_socket)
        router.add_route("*", "/rtc/v1", self.not_found)
        router.add_route("*", "/rtc/v1/validate", self.not_found)
        router.add_route("*", "/rtc/validate", self.validate)
        router.add_route("OPTIONS", "/rtc", self.preflight)
        router.add_get("/rtc", self.rtc_socket)
        router.add_post("/twirp/livekit.RoomService/DeleteRoom", self.delete_room)
        router.add_post("/twirp/livekit.RoomService/SendData", self.send_data)

    async def __aenter__(self) -> LiveKitServerDouble:
        self._loopback_only = contextlib.ExitStack()
        self._loopback_only.enter_context(only_loopback_ice_candidates())
        try:
            return await super().__aenter__()
        except BaseException:
            self._loopback_only.close()
            raise

    async def before_close(self) -> None:
        for room in list(self.rooms.values()):
            for participant in list(room.participants.values()):
                await self._remove_participant(participant, send_leave=True)
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def __aexit__(self, *exc: object) -> None:
        try:
            await super().__aexit__(*exc)
        finally:
            if self._loopback_only is not None:
                self._loopback_only.close()

    # -- waiting helpers ---------------------------------------------------------------

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """Waits until ``predicate()`` is truthy (re-checked whenever the double's state
        changes, and every 0.1 s); returns its value or raises ``TimeoutError``."""

        async def poll() -> Any:
            while True:
                value = predicate()
                if value:
                    return value
                async with self._changed:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.1)

        return await asyncio.wait_for(poll(), timeout)

    async def participant_joined(self, room: str, identity: str, timeout: float = 10.0) -> Any:
        return await self.wait_for(
            lambda: self.rooms.get(room) and self.rooms[room].participants.get(identity),
            timeout,
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("double task failed", exc_info=task.exception())

    # -- tokens ------------------------------------------------------------------------

    def verify(self, token: str) -> Any:
        if self.api_key and self.api_secret:
            return api.TokenVerifier(self.api_key, self.api_secret).verify(token)
        return api.TokenVerifier(DEFAULT_API_KEY, DEFAULT_API_SECRET).verify(
            token, verify_signature=False
        )

    def mint(self) -> api.AccessToken:
        return api.AccessToken(
            self.api_key or DEFAULT_API_KEY, self.api_secret or DEFAULT_API_SECRET
        )

    # -- plain HTTP --------------------------------------------------------------------

    async def not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="not found", headers=CORS_HEADERS)

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers=CORS_HEADERS)

    async def validate(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        try:
            self.verify(token)
        except Exception as error:
            return web.Response(status=401, text=f"invalid token: {error}")
        return web.Response(text="success")

    # -- /agent ------------------------------------------------------------------------

    async def agent_socket(self, request: web.Request) -> web.WebSocketResponse:
        authorization = request.headers.get("Authorization", "")
        if self.api_key and self.api_secret:
            try:
                claims = self.verify(authorization.removeprefix("Bearer "))
                assert claims.video.agent
            except Exception:
                return web.Response(status=401, text="invalid worker token")  # type: ignore[return-value]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        worker: WorkerConnection | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.BINARY:
                    continue
                worker_message = agent.WorkerMessage()
                worker_message.ParseFromString(message.data)
                which = worker_message.WhichOneof("message")
                if which == "register":
                    worker = await self._register(ws, worker_message.register, authorization)
                elif worker is None:
                    continue
                elif which == "ping":
                    response = agent.ServerMessage()
                    response.pong.last_timestamp = worker_message.ping.timestamp
                    response.pong.timestamp = _now_ms()
                    await ws.send_bytes(response.SerializeToString())
                elif which == "update_worker":
                    update = worker_message.update_worker
                    if update.HasField("status"):
                        worker.status = update.status
                    worker.load = update.load
                    worker.job_count = update.job_count
                    self.worker_updates.append(
                        {
                            "worker_id": worker.worker_id,
                            "status": agent.WorkerStatus.Name(worker.status),
                            "load": update.load,
                            "job_count": update.job_count,
                        }
                    )
                elif which == "availability":
                    answer = worker_message.availability
                    future = worker.pending.pop(answer.job_id, None)
                    if future is not None and not future.done():
                        future.set_result(answer)
                elif which == "update_job":
                    update = worker_message.update_job
                    self.job_updates.append(
                        {
                            "job_id": update.job_id,
                            "status": agent.JobStatus.Name(update.status),
                            "error": update.error,
                            "worker_id": worker.worker_id,
                        }
                    )
                await self._notify()
        finally:
            self._sockets.discard(ws)
            if worker is not None:
                self.workers.pop(worker.worker_id, None)
                for future in worker.pending.values():
                    if not future.done():
                        future.cancel()
                await self._notify()
        return ws

    async def _register(
        self, ws: web.WebSocketResponse, register: agent.RegisterWorkerRequest, authorization: str
    ) -> WorkerConnection:
        self.registrations.append(
            {
                "agent_name": register.agent_name,
                "authorization": authorization,
                "type": agent.JobType.Name(register.type),
                "version": register.version,
            }
        )
        worker = WorkerConnection(
            worker_id=f"AW_double_{next(self._worker_ids)}",
            agent_name=register.agent_name,
            ws=ws,
        )
        response = agent.ServerMessage()
        response.register.worker_id = worker.worker_id
        response.register.server_info.version = SERVER_VERSION
        response.register.server_info.protocol = PROTOCOL_VERSION
        response.register.server_info.node_id = "double"
        await ws.send_bytes(response.SerializeToString())
        self.workers[worker.worker_id] = worker
        self.registered.set()
        # Dispatches that found no worker wait for one, as LiveKit's do.
        for dispatch in self.dispatches:
            if dispatch.waiting_for_worker and dispatch.agent_name == worker.agent_name:
                dispatch.waiting_for_worker = False
                room = self.rooms.get(dispatch.room)
                if room is not None:
                    self._spawn(self._run_dispatch(dispatch, room))
        return worker

    def _dispatch_room_agents(self, room: Room, claims: Any) -> None:
        """A room was created by this token: dispatch what its ``roomConfig`` names, or,
        with no agents named there, every worker registered without an agent name."""
        config = claims.room_config
        named = list(config.agents) if config is not None else []
        if named:
            wanted = [(d.agent_name, d.metadata) for d in named]
            source = "token"
        else:
            names = sorted({w.agent_name for w in self.workers.values() if not w.agent_name})
            wanted = [(name, "") for name in names]
            source = "automatic"
        for agent_name, metadata in wanted:
            dispatch = Dispatch(
                room=room.name,
                agent_name=agent_name,
                metadata=metadata,
                job_id=_sid("AJ"),
                dispatch_id=_sid("AD"),
                source=source,
            )
            self.dispatches.append(dispatch)
            self._spawn(self._run_dispatch(dispatch, room))

    async def _run_dispatch(self, dispatch: Dispatch, room: Room) -> None:
        candidates = [
            w
            for w in self.workers.values()
            if w.agent_name == dispatch.agent_name and w.status == agent.WorkerStatus.WS_AVAILABLE
        ]
        candidates.sort(key=lambda w: w.load)
        job = agent.Job(
            id=dispatch.job_id,
            dispatch_id=dispatch.dispatch_id,
            type=agent.JobType.JT_ROOM,
            room=room.info,
            agent_name=dispatch.agent_name,
            metadata=dispatch.metadata,
        )
        for worker in candidates:
            dispatch.worker_id = worker.worker_id
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            worker.pending[job.id] = future
            request = agent.ServerMessage()
            request.availability.job.CopyFrom(job)
            try:
                await worker.ws.send_bytes(request.SerializeToString())
                answer: agent.AvailabilityResponse = await asyncio.wait_for(future, 10)
            except (TimeoutError, asyncio.CancelledError, ConnectionError):
                worker.pending.pop(job.id, None)
                continue
            if not answer.available:
                dispatch.accepted = False
                continue
            identity = answer.participant_identity or f"agent-{job.id}"
            dispatch.accepted = True
            dispatch.participant_identity = identity
            token = (
                self.mint()
                .with_identity(identity)
                .with_kind("agent")
                .with_grants(
                    api.VideoGrants(
                        room_join=True,
                        room=room.name,
                        agent=True,
                        can_publish=True,
                        can_subscribe=True,
                        can_publish_data=True,
                        can_update_own_metadata=True,
                    )
                )
            )
            if answer.participant_name:
                token = token.with_name(answer.participant_name)
            if answer.participant_metadata:
                token = token.with_metadata(answer.participant_metadata)
            if answer.participant_attributes:
                token = token.with_attributes(dict(answer.participant_attributes))
            assignment = agent.ServerMessage()
            assignment.assignment.job.CopyFrom(job)
            assignment.assignment.url = self.url
            assignment.assignment.token = token.to_jwt()
            await worker.ws.send_bytes(assignment.SerializeToString())
            dispatch.assigned.set()
            await self._notify()
            return
        if not candidates:
            dispatch.worker_id = ""
            dispatch.waiting_for_worker = True  # until a worker with that name registers
        await self._notify()

    async def dispatched(self, room: str, timeout: float = 10.0) -> list[Dispatch]:
        """Waits for an agent assigned to ``room``; returns the room's dispatches."""
        await self.wait_for(
            lambda: any(d.room == room and d.assigned.is_set() for d in self.dispatches),
            timeout,
        )
        return [d for d in self.dispatches if d.room == room]

    # -- RoomService (twirp) -------------------------------------------------------------

    async def delete_room(self, request: web.Request) -> web.Response:
        """``RoomService.DeleteRoom``: everyone in the room is told it is gone and leaves."""
        try:
            claims = self.verify(request.headers.get("Authorization", "").removeprefix("Bearer "))
        except Exception as error:
            return _twirp_error(401, "unauthenticated", f"invalid token: {error}")
        if not claims.video.room_create:
            return _twirp_error(403, "permission_denied", "the token may not delete rooms")
        name = api.DeleteRoomRequest.FromString(await request.read()).room
        self.delete_room_requests.append(name)
        room = self.rooms.get(name)
        if room is None:
            return _twirp_error(404, "not_found", "requested room does not exist")
        for participant in list(room.participants.values()):
            await self._remove_participant(
                participant, send_leave=True, reason=models.DisconnectReason.ROOM_DELETED
            )
        return web.Response(
            body=api.DeleteRoomResponse().SerializeToString(), content_type="application/protobuf"
        )

    async def send_data(self, request: web.Request) -> web.Response:
        """``RoomService.SendData``: a data packet from the server (no sender) to everyone in
        the room, or to ``destination_identities``, reliable or lossy as ``kind`` says."""
        try:
            claims = self.verify(request.headers.get("Authorization", "").removeprefix("Bearer "))
        except Exception as error:
            return _twirp_error(401, "unauthenticated", f"invalid token: {error}")
        send = api.SendDataRequest.FromString(await request.read())
        if not (claims.video.room_admin and claims.video.room == send.room):
            return _twirp_error(403, "permission_denied", "the token may not administer the room")
        self.send_data_requests.append(send)
        room = self.rooms.get(send.room)
        if room is None:
            return _twirp_error(404, "not_found", "requested room does not exist")
        lossy = send.kind == models.DataPacket.Kind.LOSSY
        packet = models.DataPacket(
            kind=send.kind,
            destination_identities=list(send.destination_identities),
            user=models.UserPacket(
                payload=send.data,
                topic=send.topic,
                destination_identities=list(send.destination_identities),
                nonce=send.nonce,
            ),
        )
        label = "_lossy" if lossy else "_reliable"
        self.data_log.append(
            {
                "sender": "",
                "room": room.name,
                "channel": label,
                "value": "user",
                "topic": send.topic,
                "destinations": sorted(send.destination_identities),
            }
        )
        self._deliver(room, packet, label)
        return web.Response(
            body=api.SendDataResponse().SerializeToString(), content_type="application/protobuf"
        )

    # -- /rtc: signalling --------------------------------------------------------------

    async def rtc_socket(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("access_token", "")
        if not token:
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = self.verify(token)
        except Exception as error:
            return web.Response(status=401, text=f"invalid token: {error}", headers=CORS_HEADERS)
        if not claims.video.room_join or not claims.video.room or not claims.identity:
            return web.Response(status=401, text="the token grants no room to join")
        if self.refuse_agents and claims.kind == "agent":
            # A fault to inject: the agent reaches signalling but may not join.
            self.refused_joins.append(claims.identity)
            return web.Response(status=403, text="agents may not join (test fault)")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        participant = await self._join(ws, claims, request)
        sender = self._spawn(self._send_loop(participant))
        try:
            async for message in ws:
                if message.type != WSMsgType.BINARY:
                    continue
                signal = rtc.SignalRequest()
                signal.ParseFromString(message.data)
                try:
                    await self._on_signal(participant, signal)
                except Exception:
                    logger.exception("signal %s failed", signal.WhichOneof("message"))
                if participant.gone:
                    break
        finally:
            self._sockets.discard(ws)
            await self._remove_participant(participant, send_leave=False)
            sender.cancel()
        return ws

    async def _join(
        self, ws: web.WebSocketResponse, claims: Any, request: web.Request
    ) -> Participant:
        room_name = claims.video.room
        room = self.rooms.get(room_name)
        created = room is None
        if room is None:
            room = Room(
                info=models.Room(
                    sid=_sid("RM"),
                    name=room_name,
                    empty_timeout=300,
                    creation_time=int(time.time()),
                    creation_time_ms=_now_ms(),
                )
            )
            self.rooms[room_name] = room
        old = room.participants.get(claims.identity)
        if old is not None:  # same identity again: the old connection is replaced
            await self._remove_participant(old, send_leave=True)
        video = claims.video
        info = models.ParticipantInfo(
            sid=_sid("PA"),
            identity=claims.identity,
            name=claims.name or "",
            metadata=claims.metadata or "",
            state=models.ParticipantInfo.State.ACTIVE,
            joined_at=int(time.time()),
            joined_at_ms=_now_ms(),
            version=1,
            kind=KINDS.get((claims.kind or "").lower(), models.ParticipantInfo.Kind.STANDARD),
            is_publisher=False,
        )
        info.attributes.update(claims.attributes or {})
        info.permission.can_subscribe = video.can_subscribe is not False
        info.permission.can_publish = video.can_publish is not False
        info.permission.can_publish_data = video.can_publish_data is not False
        info.permission.can_update_metadata = bool(video.can_update_own_metadata)
        info.permission.hidden = bool(video.hidden)
        info.permission.agent = bool(video.agent)
        participant = Participant(info=info, room=room, ws=ws, claims=claims)
        others = [p for p in room.participants.values()]
        room.participants[claims.identity] = participant
        room.info.num_participants = len(room.participants)
        self.joins.append(
            {
                "room": room_name,
                "identity": claims.identity,
                "kind": models.ParticipantInfo.Kind.Name(info.kind),
                "created_room": created,
                "sdk": request.query.get("sdk", ""),
                "protocol": request.query.get("protocol", ""),
            }
        )

        join = rtc.SignalResponse()
        response = join.join
        response.room.CopyFrom(room.info)
        response.participant.CopyFrom(info)
        for other in others:
            response.other_participants.append(other.info)
        response.server_version = SERVER_VERSION
        response.server_region = "double"
        response.server_info.version = SERVER_VERSION
        response.server_info.protocol = PROTOCOL_VERSION
        response.server_info.node_id = "double"
        response.server_info.region = "double"
        response.subscriber_primary = True
        response.ping_interval = 5
        response.ping_timeout = 20
        self._send(participant, join)

        self._setup_peer_connections(participant)
        for other in others:
            for track in other.tracks.values():
                if track.track is not None:
                    participant.to_subscribe.append((other, track))
        self._request_subscriber_negotiation(participant)
        self._broadcast_update(participant, exclude=participant)
        if created:
            self._dispatch_room_agents(room, claims)
        await self._notify()
        return participant

    def _send(self, participant: Participant, response: rtc.SignalResponse) -> None:
        if not participant.gone:
            participant.send_queue.put_nowait(response.SerializeToString())

    async def _send_loop(self, participant: Participant) -> None:
        while True:
            data = await participant.send_queue.get()
            try:
                await participant.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return

    def _broadcast_update(self, about: Participant, exclude: Participant | None = None) -> None:
        response = rtc.SignalResponse()
        response.update.participants.append(about.info)
        for other in list(about.room.participants.values()):
            if other is not exclude:
                self._send(other, response)

    def _bump(self, participant: Participant) -> None:
        participant.info.version += 1

    async def _on_signal(self, participant: Participant, signal: rtc.SignalRequest) -> None:
        which = signal.WhichOneof("message")
        self.signal_log.append((participant.identity, which or ""))
        if which == "offer":
            await self._on_publisher_offer(participant, signal.offer)
        elif which == "answer":
            await self._on_subscriber_answer(participant, signal.answer)
        elif which == "trickle":
            await self._on_trickle(participant, signal.trickle)
        elif which == "add_track":
            self._on_add_track(participant, signal.add_track)
        elif which == "mute":
            for track in participant.tracks.values():
                if track.info.sid == signal.mute.sid:
                    track.info.muted = signal.mute.muted
                    self._bump(participant)
                    self._broadcast_update(participant)
        elif which == "update_metadata":
            self._on_update_metadata(participant, signal.update_metadata)
        elif which == "ping":
            response = rtc.SignalResponse(pong=signal.ping)
            self._send(participant, response)
        elif which == "ping_req":
            response = rtc.SignalResponse()
            response.pong_resp.last_ping_timestamp = signal.ping_req.timestamp
            response.pong_resp.timestamp = _now_ms()
            self._send(participant, response)
        elif which == "leave":
            await self._remove_participant(participant, send_leave=False)
        await self._notify()

    def _on_update_metadata(
        self, participant: Participant, update: rtc.UpdateParticipantMetadata
    ) -> None:
        info = participant.info
        if update.metadata:
            info.metadata = update.metadata
        if update.name:
            info.name = update.name
        for key, value in update.attributes.items():
            if value:
                info.attributes[key] = value
            elif key in info.attributes:
                del info.attributes[key]
        self._bump(participant)
        if update.request_id:
            response = rtc.SignalResponse()
            response.request_response.request_id = update.request_id
            response.request_response.reason = rtc.RequestResponse.Reason.OK
            self._send(participant, response)
        self._broadcast_update(participant)

    def _on_add_track(self, participant: Participant, request: rtc.AddTrackRequest) -> None:
        info = models.TrackInfo(
            sid=_sid("TR"),
            type=request.type,
            name=request.name,
            muted=request.muted,
            width=request.width,
            height=request.height,
            source=request.source,
            disable_dtx=request.disable_dtx,
            stereo=request.stereo,
            stream=request.stream,
        )
        if request.type == models.TrackType.AUDIO:
            info.mime_type = "audio/opus"
        elif request.type == models.TrackType.VIDEO:
            info.mime_type = "video/VP8"
        participant.pending_tracks[request.cid] = PublishedTrack(info=info, cid=request.cid)
        response = rtc.SignalResponse()
        response.track_published.cid = request.cid
        response.track_published.track.CopyFrom(info)
        self._send(participant, response)

    async def _remove_participant(
        self,
        participant: Participant,
        send_leave: bool,
        reason: int = models.DisconnectReason.SERVER_SHUTDOWN,
    ) -> None:
        if participant.gone:
            return
        if send_leave:
            leave = rtc.SignalResponse()
            leave.leave.can_reconnect = False
            leave.leave.reason = reason
            leave.leave.action = rtc.LeaveRequest.Action.DISCONNECT
            with contextlib.suppress(Exception):
                await asyncio.wait_for(participant.ws.send_bytes(leave.SerializeToString()), 2)
        participant.gone = True
        room = participant.room
        if room.participants.get(participant.identity) is participant:
            del room.participants[participant.identity]
        room.info.num_participants = len(room.participants)
        participant.info.state = models.ParticipantInfo.State.DISCONNECTED
        self._bump(participant)
        self._broadcast_update(participant)
        for other in room.participants.values():
            self._unsubscribe(other, participant)
        if not room.participants and self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            await self._terminate_jobs(room.name)
        await self._notify()
        if participant.sub_negotiating is not None:
            participant.sub_negotiating.cancel()
        for pc in (participant.publisher, participant.subscriber):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pc.close(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(participant.ws.close(), 2)

    async def _terminate_jobs(self, room_name: str) -> None:
        for dispatch in self.dispatches:
            if dispatch.room != room_name or not dispatch.assigned.is_set():
                continue
            worker = self.workers.get(dispatch.worker_id)
            if worker is None:
                continue
            message = agent.ServerMessage()
            message.termination.job_id = dispatch.job_id
            with contextlib.suppress(Exception):
                await worker.ws.send_bytes(message.SerializeToString())

    # -- /rtc: media -------------------------------------------------------------------

    def _setup_peer_connections(self, participant: Participant) -> None:
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

        def configuration() -> RTCConfiguration:
            return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)

        publisher = RTCPeerConnection(configuration())
        subscriber = RTCPeerConnection(configuration())
        participant.publisher = publisher
        participant.subscriber = subscriber

        @publisher.on("track")
        def on_track(track: Any) -> None:
            self._on_remote_track(participant, track)

        @publisher.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            @channel.on("message")
            def on_message(message: Any) -> None:
                if isinstance(message, bytes):
                    self._forward_data(participant, channel.label, message)

        for label, options in (
            ("_reliable", {"ordered": True}),
            ("_lossy", {"ordered": False, "maxRetransmits": 0}),
        ):
            channel = subscriber.createDataChannel(label, **options)
            participant.sub_channels[label] = channel
            participant.sub_channel_backlog[label] = []

            def flush(label: str = label, channel: Any = channel) -> None:
                backlog = participant.sub_channel_backlog[label]
                while backlog:
                    channel.send(backlog.pop(0))

            channel.on("open", flush)

    def _forward_data(self, sender: Participant, label: str, data: bytes) -> None:
        packet = models.DataPacket()
        try:
            packet.ParseFromString(data)
        except Exception:
            logger.warning("undecodable data packet from %s", sender.identity)
            return
        packet.participant_identity = sender.identity
        packet.participant_sid = sender.sid
        if packet.WhichOneof("value") == "user":
            packet.user.participant_identity = sender.identity
            packet.user.participant_sid = sender.sid
        destinations = set(packet.destination_identities)
        value = packet.WhichOneof("value") or ""
        self.data_log.append(
            {
                "sender": sender.identity,
                "room": sender.room.name,
                "channel": label,
                "value": value,
                "topic": packet.stream_header.topic if value == "stream_header" else "",
                "destinations": sorted(destinations),
            }
        )
        self._deliver(sender.room, packet, label, sender=sender)

    def _deliver(
        self,
        room: Room,
        packet: models.DataPacket,
        label: str,
        *,
        sender: Participant | None = None,
    ) -> None:
        """Send ``packet`` to the room's participants (all but the sender, or only its
        ``destination_identities``) on the data channel ``label``."""
        destinations = set(packet.destination_identities)
        payload = packet.SerializeToString()
        for other in list(room.participants.values()):
            if other is sender or (destinations and other.identity not in destinations):
                continue
            channel = other.sub_channels.get(label) or other.sub_channels.get("_reliable")
            if channel is None:
                continue
            if channel.readyState == "open":
                try:
                    channel.send(payload)
                except Exception:
                    logger.warning("could not forward data to %s", other.identity)
            else:
                other.sub_channel_backlog[channel.label].append(payload)

    async def _on_publisher_offer(
        self, participant: Participant, offer: rtc.SessionDescription
    ) -> None:
        from aiortc import RTCSessionDescription

        pc = participant.publisher
        sdp = strip_foreign_candidates(offer.sdp)
        self._remember_publisher_mids(participant, sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._flush_candidates(participant, rtc.SignalTarget.PUBLISHER)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        response = rtc.SignalResponse()
        response.answer.type = "answer"
        response.answer.sdp = pc.localDescription.sdp
        response.answer.id = offer.id
        self._send(participant, response)

    def _remember_publisher_mids(self, participant: Participant, sdp: str) -> None:
        """Finds each pending track's mid through the msid (whose track id is the cid)."""
        mid = None
        for line in sdp.splitlines():
            if line.startswith("m="):
                mid = None
            elif line.startswith("a=mid:"):
                mid = line[len("a=mid:") :].strip()
            elif line.startswith("a=msid:"):
                parts = line[len("a=msid:") :].split()
                track_id = parts[1] if len(parts) > 1 else ""
                pending = participant.pending_tracks.get(track_id)
                if pending is not None and mid is not None:
                    pending.info.mid = mid

    def _on_remote_track(self, participant: Participant, track: Any) -> None:
        from aiortc.contrib.media import MediaRelay

        if self._relay is None:
            self._relay = MediaRelay()
        kind_type = models.TrackType.AUDIO if track.kind == "audio" else models.TrackType.VIDEO
        published = participant.pending_tracks.pop(track.id, None)
        if published is None:
            mid = None
            for transceiver in participant.publisher.getTransceivers():
                if transceiver.receiver.track is track:
                    mid = transceiver.mid
            for cid, candidate in list(participant.pending_tracks.items()):
                if candidate.info.mid and candidate.info.mid == mid:
                    published = participant.pending_tracks.pop(cid)
                    break
        if published is None:
            for cid, candidate in list(participant.pending_tracks.items()):
                if candidate.info.type == kind_type:
                    published = participant.pending_tracks.pop(cid)
                    break
        if published is None:
            logger.warning("a %s track from %s matches no add_track", track.kind, participant)
            return
        published.track = track
        participant.tracks[published.info.sid] = published
        participant.info.tracks.append(published.info)
        participant.info.is_publisher = True
        self._bump(participant)
        self._broadcast_update(participant)
        self._spawn(self._drain(self._relay.subscribe(track, buffered=False)))
        for other in list(participant.room.participants.values()):
            if other is not participant:
                other.to_subscribe.append((participant, published))
                self._request_subscriber_negotiation(other)

    async def _drain(self, track: Any) -> None:
        """Keeps the relay reading a published track even while nobody subscribes."""
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    def _unsubscribe(self, subscriber: Participant, publisher: Participant) -> None:
        subscriber.to_subscribe = [
            (p, t) for (p, t) in subscriber.to_subscribe if p is not publisher
        ]
        for transceiver in subscriber.subscriber.getTransceivers() if subscriber.subscriber else []:
            track_id = getattr(transceiver.sender, "_track_id", "")
            if track_id in publisher.tracks:
                with contextlib.suppress(Exception):
                    transceiver.sender.replaceTrack(None)

    def _request_subscriber_negotiation(self, participant: Participant) -> None:
        participant.sub_negotiation_wanted = True
        if participant.sub_negotiating is None or participant.sub_negotiating.done():
            participant.sub_negotiating = self._spawn(self._negotiate_subscriber(participant))

    async def _negotiate_subscriber(self, participant: Participant) -> None:
        pc = participant.subscriber
        while participant.sub_negotiation_wanted and not participant.gone:
            participant.sub_negotiation_wanted = False
            added = []
            first = not participant.sub_offered
            if first:
                # The first offer carries the data channels only. Media sections in it
                # would be BUNDLEd onto their own transport and aiortc would drop the one
                # it gathered for SCTP; later offers reuse the established transport.
                participant.sub_negotiation_wanted = bool(participant.to_subscribe)
            for publisher, published in [] if first else participant.to_subscribe:
                if published.info.sid in participant.subscribed or publisher.gone:
                    continue
                transceiver = pc.addTransceiver(
                    self._relay.subscribe(published.track), direction="sendonly"
                )
                transceiver.sender._stream_id = f"{publisher.sid}|{published.info.sid}"
                transceiver.sender._track_id = published.info.sid
                participant.subscribed.add(published.info.sid)
                added.append((publisher, published))
            if not first:
                participant.to_subscribe = []
            if not first and not added:
                continue
            offer = await pc.createOffer()
            await pc.setLocalDescription(offer)
            participant.sub_answer = asyncio.get_running_loop().create_future()
            response = rtc.SignalResponse()
            response.offer.type = "offer"
            response.offer.sdp = pc.localDescription.sdp
            self._send(participant, response)
            try:
                await asyncio.wait_for(participant.sub_answer, NEGOTIATION_TIMEOUT)
            except TimeoutError:
                logger.warning("%s did not answer the subscriber offer", participant.identity)
                return
            for publisher, published in added:
                if not published.subscribed_announced and not publisher.gone:
                    published.subscribed_announced = True
                    announce = rtc.SignalResponse()
                    announce.track_subscribed.track_sid = published.info.sid
                    self._send(publisher, announce)
            if first:
                participant.sub_offered = True
                await self._wait_connected(pc)

    async def _wait_connected(self, pc: Any) -> None:
        """Waits (bounded) for the first DTLS handshake before any re-offer."""
        deadline = time.monotonic() + NEGOTIATION_TIMEOUT
        while pc.connectionState not in ("connected", "failed", "closed"):
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)

    async def _on_subscriber_answer(
        self, participant: Participant, answer: rtc.SessionDescription
    ) -> None:
        from aiortc import RTCSessionDescription

        pc = participant.subscriber
        if pc.signalingState != "have-local-offer":
            return
        sdp = strip_foreign_candidates(answer.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self._flush_candidates(participant, rtc.SignalTarget.SUBSCRIBER)
        if participant.sub_answer is not None and not participant.sub_answer.done():
            participant.sub_answer.set_result(True)

    async def _on_trickle(self, participant: Participant, trickle: rtc.TrickleRequest) -> None:
        from aiortc.sdp import candidate_from_sdp

        try:
            init = json.loads(trickle.candidateInit)
        except ValueError:
            return
        text = (init.get("candidate") or "").strip()
        logger.debug("%s trickles %s: %s", participant.identity, trickle.target, text)
        if not text:
            return
        candidate = candidate_from_sdp(
            text.split(":", 1)[1] if text.startswith("candidate:") else text
        )
        if not candidate.ip.startswith("127.") or candidate.protocol.lower() != "udp":
            return
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        participant.pending_candidates.setdefault(trickle.target, []).append(candidate)
        await self._flush_candidates(participant, trickle.target)

    async def _flush_candidates(self, participant: Participant, target: int) -> None:
        pc = (
            participant.subscriber
            if target == rtc.SignalTarget.SUBSCRIBER
            else participant.publisher
        )
        if pc is None or pc.remoteDescription is None:
            return
        pending = participant.pending_candidates.pop(target, [])
        for candidate in pending:
            try:
                await pc.addIceCandidate(candidate)
            except Exception:
                logger.warning("candidate %s refused", candidate)


def _twirp_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)
