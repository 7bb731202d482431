"""Worker heartbeats and the status table: lag per partition, throughput, last snapshot, staleness.

Every worker publishes a :class:`WorkerHeartbeat` on the ``status`` topic, keyed by its
:attr:`~WorkerHeartbeat.worker` id, every couple of seconds (the runtime shell keeps the wall-clock
cadence: :class:`vtrade.runtime.status.Heartbeat`). A heartbeat says who the worker is (kind,
group, member, host, pid, when it started), how much it did (records processed, records per
second over the last interval) and, for each input partition it owns, from where a restart would
resume (its last snapshot). Anyone can then compute the status table from the log alone --
:func:`status_table` -- with the topics' end offsets and the groups' committed offsets: the
workers may run in other processes or on other machines.

Offsets follow Kafka's convention throughout: ``end`` is one past the last record, ``committed``
the next offset the group will read, ``snapshot`` the next offset after what the snapshot covers
(where a restarted worker resumes); ``lag = end - committed``, counted from the start of the log
when the group never committed.

>>> beat = WorkerHeartbeat(ts=10_000_000_000, worker="exec:exec:w1", kind="exec", group="exec",
...     member="w1", host="box", pid=42, started=0, interval_s=2.0, processed=120, rate=6.0,
...     partitions=(InputPartition("exec", "exec.in", 0, 100),))
>>> t = status_table([beat], {"exec.in": [150]}, {("exec", "exec.in"): [120]}, now_ns=11_000_000_000)
>>> w = t.workers[0]
>>> w.state, w.lag, [(p.partition, p.end, p.committed, p.lag, p.snapshot) for p in w.partitions]
('ok', 30, [(0, 150, 120, 30, 100)])
>>> status_table([beat], {"exec.in": [150]}, {}, now_ns=20_000_000_000).workers[0].state  # 10 s silent
'stale'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

import msgspec

from vtrade.core.events import Event, register_event

__all__ = [
    "STALE_AFTER",
    "GroupPartition",
    "InputPartition",
    "StatusTable",
    "WorkerHeartbeat",
    "WorkerRow",
    "partition_spans",
    "render_text",
    "status_table",
]

#: A worker is stale when no heartbeat came for this many of its intervals.
STALE_AFTER = 3.0

State = Literal["ok", "stale", "stopped"]


class InputPartition(msgspec.Struct, frozen=True, array_like=True):
    """One input partition a worker owns: its group, topic and partition, and ``snapshot``, the
    offset a restart would resume from (its last snapshot covers everything below; None: the
    worker keeps no snapshot of it)."""

    group: str
    topic: str
    partition: int
    snapshot: int | None


class WorkerHeartbeat(Event, frozen=True, array_like=True, tag=True):
    """A worker's periodic "I am alive, here is what I do" on the ``status`` topic.

    ``ts`` is the wall-clock time of the beat (UTC ns; status is about real time, not simulated
    time), ``started`` when the worker started, ``processed`` the records it polled since, and
    ``rate`` records per second over the last interval. ``stopping`` marks the last beat of a
    worker that stopped cleanly.
    """

    worker: str
    kind: str
    group: str
    member: str
    host: str
    pid: int
    started: int
    interval_s: float
    processed: int
    rate: float
    partitions: tuple[InputPartition, ...]
    stopping: bool = False


register_event(WorkerHeartbeat)


class GroupPartition(msgspec.Struct, frozen=True):
    """One partition of a group's input: where the log ends, what the group committed (None:
    never), the lag, the owner's last snapshot and the owner (None: no live worker claims it)."""

    group: str
    topic: str
    partition: int
    end: int | None
    committed: int | None
    lag: int | None
    snapshot: int | None
    owner: str | None


class WorkerRow(msgspec.Struct, frozen=True):
    """One worker as the table shows it; ``age_s`` is the time since its last heartbeat and
    ``lag`` the sum over its partitions."""

    worker: str
    kind: str
    group: str
    member: str
    host: str
    pid: int
    started: int
    last_seen: int
    age_s: float
    state: State
    processed: int
    rate: float
    lag: int
    partitions: tuple[GroupPartition, ...]


class StatusTable(msgspec.Struct, frozen=True):
    """Workers (by id) and every partition of the groups looked at (by group, topic, partition)."""

    now: int
    workers: tuple[WorkerRow, ...]
    groups: tuple[GroupPartition, ...]

    def to_json(self) -> bytes:
        """The table as JSON (what ``vtrade status --json`` prints)."""
        return msgspec.json.encode(self)


def _state(beat: WorkerHeartbeat, now_ns: int, stale_after: float) -> State:
    if beat.stopping:
        return "stopped"
    silent_s = (now_ns - beat.ts) / 1e9
    return "stale" if silent_s > stale_after * beat.interval_s else "ok"


def _partition(
    group: str, topic: str, p: int, end_offsets: Mapping[str, Sequence[int]],
    group_offsets: Mapping[tuple[str, str], Sequence[int | None]], snapshot: int | None, owner: str | None,
) -> GroupPartition:  # fmt: skip
    ends, committed = end_offsets.get(topic), group_offsets.get((group, topic))
    end = ends[p] if ends is not None and p < len(ends) else None
    done = committed[p] if committed is not None and p < len(committed) else None
    # A group that never committed starts at the beginning of the log (auto_offset_reset "earliest").
    lag = None if end is None else max(0, end - (done or 0))
    return GroupPartition(group, topic, p, end, done, lag, snapshot, owner)


def status_table(
    heartbeats: Iterable[WorkerHeartbeat],
    end_offsets: Mapping[str, Sequence[int]],
    group_offsets: Mapping[tuple[str, str], Sequence[int | None]],
    now_ns: int,
    *,
    stale_after: float = STALE_AFTER,
) -> StatusTable:
    """The status table from the latest heartbeat of each worker (later beats of the same worker
    win), the topics' ``end_offsets``, the groups' committed offsets by ``(group, topic)`` and the
    wall-clock ``now_ns``.

    A worker is ``stale`` after ``stale_after`` of its intervals without a heartbeat, ``stopped``
    after its last beat said so. A partition's owner is the live (``ok``) worker that claimed it
    most recently (after a rebalance two workers may claim it until the old owner's next beat).
    ``groups`` lists every partition of every ``(group, topic)`` in ``group_offsets``, plus those
    the heartbeats name.

    >>> t = status_table([], {"orders": [7]}, {("live-broker", "orders"): [None]}, now_ns=0)
    >>> [(g.group, g.committed, g.lag, g.owner) for g in t.groups]  # never committed: lag from 0
    [('live-broker', None, 7, None)]
    """
    if not stale_after > 0:
        raise ValueError(f"stale_after must be a positive number of intervals, got {stale_after!r}")
    latest: dict[str, WorkerHeartbeat] = {}
    for b in heartbeats:
        if b.worker not in latest or b.ts >= latest[b.worker].ts:
            latest[b.worker] = b
    states = {w: _state(b, now_ns, stale_after) for w, b in latest.items()}
    claims: dict[tuple[str, str, int], tuple[int, str, int | None]] = {}  # -> (beat ts, worker, snapshot)
    for w, b in latest.items():
        if states[w] != "ok":
            continue
        for ip in b.partitions:
            key = (ip.group, ip.topic, ip.partition)
            if key not in claims or b.ts > claims[key][0]:
                claims[key] = (b.ts, w, ip.snapshot)
    keys = {(g, t, p) for (g, t), offs in group_offsets.items() for p in range(len(offs))}
    keys |= {(ip.group, ip.topic, ip.partition) for b in latest.values() for ip in b.partitions}

    def row(key: tuple[str, str, int], snapshot: int | None, owner: str | None) -> GroupPartition:
        return _partition(*key, end_offsets, group_offsets, snapshot, owner)

    groups = tuple(row(k, claims[k][2], claims[k][1]) if k in claims else row(k, None, None) for k in sorted(keys))
    workers = []
    for w, b in sorted(latest.items()):
        parts = tuple(row((ip.group, ip.topic, ip.partition), ip.snapshot, w) for ip in b.partitions)
        workers.append(WorkerRow(
            w, b.kind, b.group, b.member, b.host, b.pid, b.started, b.ts, max(0.0, (now_ns - b.ts) / 1e9),
            states[w], b.processed, b.rate, sum(p.lag or 0 for p in parts), parts,
        ))  # fmt: skip
    return StatusTable(now_ns, tuple(workers), groups)


# ---------------------------------------------------------------------------------------------- text


def _dash(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s < 86400 else f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Aligned columns under a rule; the columns in ``right`` (numbers) aligned right."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return [line(headers), "  ".join("─" * w for w in widths), *(line(r) for r in rows)]


def partition_spans(partitions: Iterable[GroupPartition]) -> str:
    """Partitions as short text, consecutive ones as a range: ``exec.in[0-3,6]``.

    >>> ps = [GroupPartition("g", "exec.in", p, None, None, None, None, None) for p in (0, 1, 2, 3, 6)]
    >>> partition_spans(ps), partition_spans([])
    ('exec.in[0-3,6]', '—')
    """
    by_topic: dict[str, list[int]] = {}
    for p in partitions:
        by_topic.setdefault(p.topic, []).append(p.partition)
    out = []
    for topic, numbers in by_topic.items():
        spans: list[list[int]] = []
        for n in sorted(set(numbers)):
            if spans and n == spans[-1][1] + 1:
                spans[-1][1] = n
            else:
                spans.append([n, n])
        out.append(f"{topic}[{','.join(str(a) if a == b else f'{a}-{b}' for a, b in spans)}]")
    return " ".join(out) or "—"


def render_text(table: StatusTable, *, title: str = "") -> str:
    """The table as aligned plain text (what ``vtrade status`` prints).

    >>> print(render_text(status_table([], {"orders": [7]}, {("live-broker", "orders"): [5]}, now_ns=0)))
    vtrade status · 1970-01-01 00:00:00 UTC
    no worker heartbeats on the status topic
    <BLANKLINE>
    group        topic   part  end  committed  lag  snapshot  owner
    ───────────  ──────  ────  ───  ─────────  ───  ────────  ─────
    live-broker  orders     0    7          5    2         —  —
    """
    when = datetime.fromtimestamp(table.now / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [" · ".join(x for x in ("vtrade status", title, when) if x)]
    if table.workers:
        rows = [
            [w.worker, w.kind, w.state, f"{w.host}:{w.pid}", _duration((w.last_seen - w.started) / 1e9),
             f"{_duration(w.age_s)} ago", f"{w.processed:,}", f"{w.rate:,.1f}", f"{w.lag:,}",
             partition_spans(w.partitions)]
            for w in table.workers
        ]  # fmt: skip
        headers = ["worker", "kind", "state", "host:pid", "up", "last beat", "processed", "rec/s", "lag", "partitions"]
        out += _grid(headers, rows, right={6, 7, 8})
    else:
        out.append("no worker heartbeats on the status topic")
    if table.groups:
        rows = [
            [g.group, g.topic, str(g.partition), _dash(g.end), _dash(g.committed), _dash(g.lag), _dash(g.snapshot),
             g.owner or "—"]
            for g in table.groups
        ]  # fmt: skip
        headers = ["group", "topic", "part", "end", "committed", "lag", "snapshot", "owner"]
        out += ["", *_grid(headers, rows, right={2, 3, 4, 5, 6})]
    return "\n".join(out)
