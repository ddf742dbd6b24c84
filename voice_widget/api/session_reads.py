"""What the session endpoint reads, kept to what it needs (issue 14, point 1).

A visitor's session request is answered with two statements when nothing forces more
(three more for a logged-in user's session and user rows): the persona's few columns the
checks use, and the conversation's INSERT. The rest is read only when it could change
the answer:

- the persona's snapshot (every column, ~3 KB of JSON) and its newest saved version (the
  history row the conversation links to) come from a per-process cache keyed by the
  persona's primary key and ``updated_at``, so an edit saved in admin applies to the next
  conversation; a change made with ``QuerySet.update()`` (which leaves ``updated_at`` alone
  and writes no version) is seen once the entry is ``SNAPSHOT_MAX_AGE`` seconds old;
- "a worker is alive" is remembered per process until the newest heartbeat would go
  stale, and at most ``WORKER_ALIVE_CACHE_SECONDS``, so a stopped worker is noticed within
  that time; "no worker" is never remembered (a started worker is seen at once);
- the per-visitor cap on unjoined conversations is counted in the cache first (see
  ``could_exceed_unjoined``); the database is asked only when the visitor could be over it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.signals import setting_changed
from django.db import connections, router
from django.db.models import Max, OuterRef, Subquery
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from ..models import Persona, WorkerHeartbeat

#: The persona columns the session endpoint's checks read (origin, login, budget, limits).
SESSION_PERSONA_FIELDS = (
    "id",
    "slug",
    "is_active",
    "allowed_origins",
    "login_required",
    "daily_budget",
    "daily_budget_unit",
    "max_concurrent_conversations",
    "preview_idle_seconds",
    "max_duration_seconds",
    "consent_text",
    "consent_url",
    "updated_at",
)
#: Seconds a cached snapshot serves at most (bounds what ``QuerySet.update()`` hides).
SNAPSHOT_MAX_AGE = 30.0
#: Snapshots kept per process (personas, or versions of one, in use at once).
SNAPSHOT_CACHE_SIZE = 128
#: Seconds a process trusts "a worker is alive" before asking the database again.
WORKER_ALIVE_CACHE_SECONDS = 3.0

_lock = threading.Lock()
_snapshots: OrderedDict[tuple[Any, datetime], tuple[float, SessionSnapshot]] = OrderedDict()
_alive_until: dict[str, float] = {}


def session_persona(slug: str) -> Persona:
    """The active persona ``slug`` with only ``SESSION_PERSONA_FIELDS`` loaded.

    The same as ``Persona.objects.active().only(*SESSION_PERSONA_FIELDS).get(slug=slug)``,
    compiled once per database (``_session_persona_query``): for a model of 75 fields,
    building that statement cost more than running it. The row becomes a ``Persona`` the
    way the ORM makes one (the columns' converters, then ``Model.from_db``).
    """
    alias = router.db_for_read(Persona)
    connection = connections[alias]
    query = _session_persona_query(alias, connection.settings_dict["ENGINE"])
    params = list(query.params)
    params[query.slug_index] = slug
    with connection.cursor() as cursor:
        cursor.execute(query.sql, params)
        row = cursor.fetchone()  # the slug is unique
    if row is None:
        raise Persona.DoesNotExist(f"No active persona with the slug {slug!r}.")
    values = list(row)
    for position, column in enumerate(query.columns):
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        for converter in converters:
            values[position] = converter(values[position], column, connection)
    return Persona.from_db(alias, query.attnames, values)


@dataclass(frozen=True)
class _CompiledQuery:
    sql: str
    params: tuple[Any, ...]
    slug_index: int
    columns: list[Any]
    attnames: list[str]


#: Stands in for the slug while the statement is compiled; never sent to the database.
_SLUG_PLACEHOLDER = "\x00slug"


@lru_cache(maxsize=8)
def _session_persona_query(alias: str, engine: str) -> _CompiledQuery:
    """The session's persona query on database ``alias`` (``engine`` keys the cache too,
    for tests that swap databases). Holds no connection: each thread has its own."""
    queryset = (
        Persona.objects.using(alias)
        .active()
        .only(*SESSION_PERSONA_FIELDS)
        .filter(slug=_SLUG_PLACEHOLDER)
        .order_by()
    )
    compiler = queryset.query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    columns = [column for column, _sql, _alias in compiler.select]
    return _CompiledQuery(
        sql=sql,
        params=tuple(params),
        slug_index=list(params).index(_SLUG_PLACEHOLDER),
        columns=columns,
        attnames=[column.target.attname for column in columns],
    )


@dataclass(frozen=True)
class SessionSnapshot:
    """What a new conversation stores of its persona, read in one statement."""

    #: ``Persona.snapshot()``; shared between requests: callers store it, never change it.
    data: dict[str, Any]
    #: The newest ``HistoricalPersona`` row of the persona when it was read (None: none yet).
    version_id: int | None


def persona_snapshot(persona: Persona) -> SessionSnapshot:
    """The snapshot and the version of ``persona``'s row, from the cache when its version is
    known.

    On a miss the whole row is read with the id of its newest version (one statement, so
    the two agree) and kept.
    """
    key = (persona.pk, persona.updated_at)
    now = time.monotonic()
    with _lock:
        entry = _snapshots.get(key)
        if entry is not None and now - entry[0] < SNAPSHOT_MAX_AGE:
            _snapshots.move_to_end(key)
            return entry[1]
    versions = Persona.history.model.objects.filter(id=OuterRef("pk"))
    full = Persona.objects.annotate(
        newest_version=Subquery(
            versions.order_by("-history_date", "-history_id").values("history_id")[:1]
        )
    ).get(pk=persona.pk)
    snapshot = SessionSnapshot(data=full.snapshot(), version_id=full.newest_version)
    with _lock:
        _snapshots[(full.pk, full.updated_at)] = (now, snapshot)
        while len(_snapshots) > SNAPSHOT_CACHE_SIZE:
            _snapshots.popitem(last=False)
    return snapshot


def worker_alive(agent_name: str, within: timedelta) -> bool:
    """True if a worker serving ``agent_name`` sent a heartbeat within ``within``."""
    now = time.monotonic()
    with _lock:
        if _alive_until.get(agent_name, 0.0) > now:
            return True
    newest = WorkerHeartbeat.objects.alive(agent_name, within=within).aggregate(
        newest=Max("last_seen")
    )["newest"]
    if newest is None:
        return False
    fresh_for = (newest + within - timezone.now()).total_seconds()
    with _lock:
        _alive_until[agent_name] = now + min(fresh_for, WORKER_ALIVE_CACHE_SECONDS)
    return True


def could_exceed_unjoined(
    persona: Persona, *, user: Any, visitor_key: str, window: timedelta, limit: int
) -> bool:
    """False when this visitor certainly holds fewer than ``limit`` unjoined conversations of
    ``persona`` within ``window``; True when the database must be asked.

    Every request that gets this far is counted in Django's default cache (the throttles'
    cache), in buckets ``window`` long: this bucket's count plus the previous one's bounds
    the visitor's requests of the last ``window``, and a conversation nobody joined is one
    of those. Refused requests count too, which only sends a visitor to the database
    sooner. The increment is atomic, so simultaneous requests see distinct counts. A cache
    that keeps nothing, or fails to count, sends every request to the database. The bound
    holds for every process only if they share the cache (``voice_widget.W002``).
    """
    seconds = max(int(window.total_seconds()), 1)
    bucket = int(time.time() // seconds)
    subject = f"u{user.pk}" if user is not None else visitor_key
    prefix = f"voice_widget:unjoined:{persona.pk}:{subject}"
    cache = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(cache, DummyCache):
        return True  # its add() says yes and keeps nothing
    try:
        # A visitor's first request of the bucket creates its count at 1 (one operation).
        mine = 1 if cache.add(f"{prefix}:{bucket}", 1, 2 * seconds) else None
        if mine is None:
            mine = cache.incr(f"{prefix}:{bucket}")
        before = cache.get(f"{prefix}:{bucket - 1}") or 0
    except ValueError:  # the key expired between add and incr
        return True
    # ``mine`` counts this request: the visitor could hold ``mine + before - 1`` already.
    return mine + before - 1 >= limit


def clear_session_caches() -> None:
    """Forget every cached snapshot and "a worker is alive" in this process, and the
    compiled persona query."""
    with _lock:
        _session_persona_query.cache_clear()
        _snapshots.clear()
        _alive_until.clear()


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    # Snapshots hold file URLs (MEDIA_URL, storages); liveness depends on AGENT_NAME and
    # the heartbeat timeout.
    clear_session_caches()


@receiver(post_save, sender=WorkerHeartbeat)
@receiver(post_delete, sender=WorkerHeartbeat)
def _heartbeat_changed(**kwargs: Any) -> None:
    # A worker stopping in this process (run_voice_agent's shutdown) is seen at once here.
    with _lock:
        _alive_until.clear()
