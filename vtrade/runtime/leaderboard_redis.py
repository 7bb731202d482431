"""Leaderboards on Redis Sorted Sets: the :class:`~vtrade.game.leaderboard.Leaderboards`
interface with exactly the rankings of the embedded structure.

Layout (every key starts with the namespace, ``vt`` by default)::

    {ns}:lb:{board.key}          zset    member -> packed score (vtrade.game.leaderboard.pack)
    {ns}:lb-frozen:{board.key}   string  present while the board is frozen

The packing, validation and rules live in :mod:`vtrade.game.leaderboard`; this module only moves
them onto Redis. Scores are packed in Python and stored as exact float64 integers (< 2^53, which
Redis keeps and returns exactly). Each update is one small Lua script, so the frozen check, the
read of the current score and the write are one atomic round trip: ``set`` and ``add`` must read
the current value (the same units keep the earlier time; ZINCRBY must not carry the old tie bits
into a new score), and ``set_best`` is ``ZADD … GT`` on the packed value. ``set_many`` runs the
same update for each row, the whole batch in one script. Window boards get a TTL
(``window_ttl_s``, refreshed on every write) so that old days leave the server's memory; the
embedded structure drops them only when asked (:meth:`drop`), which never changes a ranking.

A union with ``max`` is ``ZUNIONSTORE … AGGREGATE MAX`` on the packed values (the highest
score, earliest on ties); one with ``sum`` must add the units and keep the latest time, which no
ZUNIONSTORE weight can do, so a script adds them member by member.

Keys are not hash-tagged: on a Redis Cluster a board and its frozen marker could live on
different nodes. vtrade runs one Redis (DESIGN.md §1); a cluster would tag ``{board.key}``.

Usage (against a running server)::

    lb = RedisLeaderboards("redis://127.0.0.1:6379/0", namespace="classroom-42")
    lb.add(Board("xp", class_id="econ"), "ann", 50, at_ns=event.ts)
    lb.set_many(Board("return", class_id="econ"), ["ann", "bob"], [0.05, -0.01], at_ns=event.ts)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from vtrade.game.leaderboard import (
    TIE_BITS,
    TIE_MAX,
    UNITS_MAX,
    Aggregate,
    Board,
    BoardFrozenError,
    Metric,
    Mode,
    Scores,
    Standing,
    Times,
    Update,
    check_count,
    check_member,
    check_rows,
    check_union,
    new_units,
    tie_of,
    union_values,
    value_units,
)

__all__ = ["DEFAULT_WINDOW_TTL_S", "RedisLeaderboards"]

#: How long a window board (a day, a week) lives after its last write: a week and a day, so that
#: a weekly union still finds all its days.
DEFAULT_WINDOW_TTL_S = 8 * 86_400

# Replies of the update scripts: {status, units}. Statuses are numbers, not error replies, so that
# the Python side raises exactly the embedded structure's exceptions.
_FROZEN, _RANGE, _SAME, _CHANGED = -2, -1, 0, 1

# One update of a member's packed score, shared by the scripts below: returns {status, units}.
# Scores go back to Redis through string.format('%.0f'): Lua's own number-to-string keeps only
# 14 significant digits, and packed scores have up to 16.
_UPDATE_FN = """
local T = 4294967296
local function update(key, mode, member, v, tie, umax)
  local raw = redis.call('ZSCORE', key, member)
  local cu, ct
  if raw then
    local cur = tonumber(raw)
    cu = math.floor(cur / T)
    ct = cur - cu * T
  end
  local units = v
  if mode == 'add' then
    units = (cu or 0) + v
    if units > umax or units < -umax then return -1, cu or 0 end
  elseif mode == 'best' and cu and units < cu then
    return 0, cu
  end
  if cu and units == cu and tie <= ct then return 0, cu end
  redis.call('ZADD', key, string.format('%.0f', units * T + tie), member)
  return 1, units
end
"""

# KEYS: board, frozen marker. ARGV: mode, member, units (delta for add), tie, units max, ttl.
_UPDATE = _UPDATE_FN + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {-2, 0} end
local ttl = tonumber(ARGV[6])
local status, units = update(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
if status == 1 and ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return {status, units}
"""

# KEYS: board, frozen marker. ARGV: units max, ttl, then member, units, tie per row (validated).
# -2 if frozen, else how many rows changed the board.
_SET_MANY = _UPDATE_FN + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
local umax, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local changed = 0
for i = 3, #ARGV, 3 do
  changed = changed + update(KEYS[1], 'set', ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), umax)
end
if changed > 0 and ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return changed
"""

# KEYS: board, frozen marker. ARGV: member. -2 if frozen, else ZREM's count.
_REMOVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

# KEYS: board, frozen marker.
_DROP = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: board. ARGV: member, k. nil if absent, else {first rank, {member, score, ...}}.
_AROUND = """
local r = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not r then return false end
local lo = r - tonumber(ARGV[2])
if lo < 0 then lo = 0 end
return {lo, redis.call('ZRANGE', KEYS[1], lo, r + tonumber(ARGV[2]), 'REV', 'WITHSCORES')}
"""

# KEYS: dest frozen marker, dest, sources... ARGV: ttl. -2 if frozen, else the union's size.
_UNION_MAX = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -2 end
local args = {KEYS[2], #KEYS - 2}
for i = 3, #KEYS do args[#args + 1] = KEYS[i] end
args[#args + 1] = 'AGGREGATE'
args[#args + 1] = 'MAX'
local n = redis.call('ZUNIONSTORE', unpack(args))
local ttl = tonumber(ARGV[1])
if n > 0 and ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return n
"""

# KEYS: dest frozen marker, dest, sources... ARGV: ttl, units max. Adds units, keeps the smallest
# tie (the latest time); computes everything before the first write. {-2} frozen,
# {-1, member, units} a sum out of range, else {size}.
_UNION_SUM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {-2} end
local T = 4294967296
local umax = tonumber(ARGV[2])
local units, ties, order = {}, {}, {}
for i = 3, #KEYS do
  local rows = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  for j = 1, #rows, 2 do
    local m, p = rows[j], tonumber(rows[j + 1])
    local u = math.floor(p / T)
    local t = p - u * T
    if units[m] == nil then
      units[m] = u; ties[m] = t; order[#order + 1] = m
    else
      units[m] = units[m] + u
      if t < ties[m] then ties[m] = t end
    end
  end
end
for _, m in ipairs(order) do
  if units[m] > umax or units[m] < -umax then return {-1, m, units[m]} end
end
redis.call('DEL', KEYS[2])
local batch = {}
for _, m in ipairs(order) do
  batch[#batch + 1] = string.format('%.0f', units[m] * T + ties[m])
  batch[#batch + 1] = m
  if #batch >= 1000 then redis.call('ZADD', KEYS[2], unpack(batch)); batch = {} end
end
if #batch > 0 then redis.call('ZADD', KEYS[2], unpack(batch)) end
local ttl = tonumber(ARGV[1])
if #order > 0 and ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return {#order}
"""


def _units(packed: float | bytes | str) -> int:
    # Redis returns the packed integer exactly (a float64 below 2^53, or its decimal string).
    return int(float(packed)) >> TIE_BITS


class RedisLeaderboards:
    """:class:`~vtrade.game.leaderboard.Leaderboards` on Redis Sorted Sets.

    ``client`` is a ``redis://`` URL or a ``redis.Redis`` (bytes replies: the default). Keys
    start with ``namespace``; window boards expire ``window_ttl_s`` seconds (server time) after
    their last write (0: never).
    """

    def __init__(
        self, client: str | redis.Redis, namespace: str = "vt", window_ttl_s: int = DEFAULT_WINDOW_TTL_S
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"namespace must be a non-empty str, got {namespace!r}")
        if isinstance(window_ttl_s, bool) or not isinstance(window_ttl_s, int) or window_ttl_s < 0:
            raise ValueError(f"window_ttl_s must be an int >= 0 (0: no TTL), got {window_ttl_s!r}")
        self._r: redis.Redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        self.namespace = namespace
        self.window_ttl_s = window_ttl_s
        self._lua_update = self._r.register_script(_UPDATE)
        self._lua_set_many = self._r.register_script(_SET_MANY)
        self._lua_remove = self._r.register_script(_REMOVE)
        self._lua_drop = self._r.register_script(_DROP)
        self._lua_around = self._r.register_script(_AROUND)
        self._lua_union_max = self._r.register_script(_UNION_MAX)
        self._lua_union_sum = self._r.register_script(_UNION_SUM)

    def key(self, board: Board) -> str:
        """The sorted set's Redis key."""
        return f"{self.namespace}:lb:{board.key}"

    def _frozen_key(self, board: Board) -> str:
        return f"{self.namespace}:lb-frozen:{board.key}"

    def _ttl(self, board: Board) -> int:
        return self.window_ttl_s if board.window is not None else 0

    def close(self) -> None:
        self._r.close()

    # updates -------------------------------------------------------------------------------

    def _update(self, board: Board, member: str, value: float, at_ns: int, mode: Mode) -> Update:
        # The same checks, in the same order, as the embedded structure, before any round trip.
        check_member(member)
        tie = tie_of(at_ns)
        metric: Metric = board.spec
        v = value_units(metric, value, mode)
        status, units = self._lua_update(
            keys=[self.key(board), self._frozen_key(board)],
            args=[mode, member, v, tie, UNITS_MAX, self._ttl(board)],
        )
        if status == _FROZEN:
            raise BoardFrozenError(board)
        if status == _RANGE:
            new_units(metric, int(units), v, mode)  # raises the embedded structure's ValueError
            raise AssertionError("the script and new_units disagree on the range")  # pragma: no cover
        return Update(status == _CHANGED, metric.score(int(units)))

    def set(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        return self._update(board, member, score, at_ns, "set")

    def set_many(self, board: Board, members: Sequence[str], scores: Scores, at_ns: Times) -> int:
        # Checked in Python first (the embedded structure's checks and errors), then one script:
        # all or nothing, and atomic like a loop of set by a single writer. The server runs the
        # whole batch at once (1,000 rows at 1M members: ~25 ms in all, measured), so callers
        # keep batches to a few thousand rows.
        names, units, ties = check_rows(board.spec, members, scores, at_ns)
        rows = [x for row in zip(names, units.tolist(), ties.tolist(), strict=True) for x in row]
        changed = self._lua_set_many(
            keys=[self.key(board), self._frozen_key(board)], args=[UNITS_MAX, self._ttl(board), *rows]
        )
        if changed == _FROZEN:
            raise BoardFrozenError(board)
        return int(changed)

    def set_best(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        return self._update(board, member, score, at_ns, "best")

    def add(self, board: Board, member: str, delta: float, at_ns: int) -> Update:
        return self._update(board, member, delta, at_ns, "add")

    def remove(self, board: Board, member: str) -> bool:
        check_member(member)
        n = self._lua_remove(keys=[self.key(board), self._frozen_key(board)], args=[member])
        if n == _FROZEN:
            raise BoardFrozenError(board)
        return bool(n)

    def union(self, dest: Board, sources: Sequence[Board], aggregate: Aggregate | None = None) -> int:
        agg = check_union(dest, sources, aggregate)
        keys = [self._frozen_key(dest), self.key(dest), *(self.key(b) for b in sources)]
        if agg == "max":
            n = self._lua_union_max(keys=keys, args=[self._ttl(dest)])
            if n == _FROZEN:
                raise BoardFrozenError(dest)
            return int(n)
        reply = self._lua_union_sum(keys=keys, args=[self._ttl(dest), UNITS_MAX])
        if reply[0] == _FROZEN:
            raise BoardFrozenError(dest)
        if reply[0] == _RANGE:
            member = reply[1].decode("utf-8")
            union_values(dest.spec, [[(member, int(reply[2]) << TIE_BITS)]], "sum")  # raises the same ValueError
            raise AssertionError("the script and union_values disagree on the range")  # pragma: no cover
        return int(reply[0])

    def drop(self, board: Board) -> None:
        if self._lua_drop(keys=[self.key(board), self._frozen_key(board)]) == _FROZEN:
            raise BoardFrozenError(board)

    def freeze(self, board: Board) -> None:
        self._r.set(self._frozen_key(board), b"1")

    def unfreeze(self, board: Board) -> None:
        self._r.delete(self._frozen_key(board))

    def is_frozen(self, board: Board) -> bool:
        return bool(self._r.exists(self._frozen_key(board)))

    # queries -------------------------------------------------------------------------------

    def score(self, board: Board, member: str) -> float | None:
        check_member(member)
        raw = self._r.zscore(self.key(board), member)
        return None if raw is None else board.spec.score(_units(raw))

    def rank(self, board: Board, member: str) -> int | None:
        check_member(member)
        r: Any = self._r.zrevrank(self.key(board), member)  # redis-py types it with WITHSCORE's list
        return None if r is None else int(r)

    def _standings(self, first: int, rows: Sequence[Any], metric: Metric) -> list[Standing]:
        return [
            Standing(first + i, m.decode("utf-8"), metric.score(_units(p)))
            for i, (m, p) in enumerate(rows)
        ]

    def top(self, board: Board, n: int = 10) -> list[Standing]:
        check_count(n, "n")
        if n == 0:  # ZRANGE 0 -1 would be the whole board
            return []
        rows = self._r.zrange(self.key(board), 0, n - 1, desc=True, withscores=True)
        return self._standings(0, rows, board.spec)

    def around(self, board: Board, member: str, k: int = 5) -> list[Standing]:
        check_count(k, "k")
        check_member(member)
        reply = self._lua_around(keys=[self.key(board)], args=[member, k])
        if reply is None:
            return []
        first, flat = int(reply[0]), reply[1]
        return self._standings(first, list(zip(flat[::2], flat[1::2], strict=True)), board.spec)

    def size(self, board: Board) -> int:
        return int(self._r.zcard(self.key(board)))


# The packing's constants the scripts hard-code: fail at import, not in a ranking, if they move.
assert TIE_BITS == 32 and TIE_MAX == 4294967295, "update the Lua scripts' T = 2^TIE_BITS"
