"""A class's rules preset and how it maps onto the broker's account rules.

:class:`ClassRules` is what a teacher chooses; it travels on the log inside
:class:`~vtrade.classroom.events.ClassCreated` and changes by
:class:`~vtrade.classroom.events.SettingsChanged` (a :class:`RulesPatch`). It enforces
nothing itself: :meth:`ClassRules.session_limits`, :meth:`ClassRules.margin_policy`,
:meth:`ClassRules.fee_model` and :attr:`ClassRules.realism_level` turn it into the objects the
existing :class:`~vtrade.execution.broker.Brokerage` and engine already enforce, so a class
rule has exactly one implementation (in :mod:`vtrade.execution.accounts`).

>>> from vtrade.core.instruments import us_equity
>>> rules = ClassRules(starting_cash="25000", max_trades_per_day=5, allowed_sectors=frozenset({"Energy"}))
>>> insts = [us_equity("XOM", sector="Energy"), us_equity("AAPL", sector="Information Technology")]
>>> limits = rules.session_limits(insts)
>>> sorted(limits.allowed_symbols), limits.max_orders_per_day, limits.shorting_allowed
(['XOM'], 5, False)
>>> ClassRules(max_position_pct=150)
Traceback (most recent call last):
...
vtrade.classroom.errors.ClassroomError: Max position must be more than 0 % and at most 100 % of account value, got 150
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from vtrade.classroom.errors import ClassroomError
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import exact_decimal
from vtrade.execution.accounts import AccountKind, MarginPolicy, SessionLimits
from vtrade.execution.engine import Realism
from vtrade.execution.fees import FEE_PRESETS, FeeModel, fee_preset
from vtrade.execution.knobs import account_kind, cash_amount

__all__ = ["ECONOMIC_FIELDS", "MARKETS", "ClassRules", "RulesPatch"]

#: Settings that decide what a portfolio can earn: they lock once trading starts, so that no
#: student's result depends on when the teacher changed them.
ECONOMIC_FIELDS = frozenset(
    {"starting_cash", "realism", "fees", "account_kind", "shorting_allowed", "initial_margin_pct",
     "maintenance_margin_pct", "market", "replay_start", "seed"}
)  # fmt: skip

#: The markets a class can trade: the 500-stock universe replayed from ``replay_start``, the
#: recorded Binance BTCUSDT capture, or a seeded synthetic market of agent order flow.
MARKETS = ("universe", "crypto", "synthetic")

_HUNDRED = Decimal(100)
_MAX_CASH = Decimal(10) ** 12  # a trillion: beyond it a typo, not a lesson


def _out_of_range(message: str) -> ClassroomError:
    return ClassroomError("out_of_range", message)


def _decimal(value: object, label: str) -> Decimal:
    try:
        return exact_decimal(value, label, allow_float=True)
    except ValueError as exc:  # "starting cash must not be negative, got '-5'": say it as a sentence
        text = str(exc)
        raise _out_of_range(text[:1].upper() + text[1:]) from None


def _pct(value: object, label: str, *, upper: Decimal = _HUNDRED) -> Decimal:
    pct = _decimal(value, label)
    if not 0 < pct <= upper:
        raise _out_of_range(f"{label[0].upper()}{label[1:]} must be more than 0 % and at most {upper} % "
                            f"of account value, got {value}")  # fmt: skip
    return pct


def _names(value: object, label: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _out_of_range(f"The {label} must be a set of names, got {value!r}")
    out = set()
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _out_of_range(f"The {label} must be non-empty names, got {item!r}")
        out.add(item.strip())
    return frozenset(out)


def _time(value: object, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _out_of_range(f"The {label} must be a time in nanoseconds since 1970 (UTC), got {value!r}")
    return value


class ClassRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A class's rules preset. Validated when made (and when read back from the log); a bad
    value is a :class:`ClassroomError` (``out_of_range``) naming the setting.

    Economics (:data:`ECONOMIC_FIELDS`, locked once trading starts):

    - ``starting_cash``: each student's opening cash in USD, more than 0 (Decimal, int, decimal
      text or a float read through its shortest text).
    - ``realism``: the engine's realism level, ``"bars"``, ``"L1"``, ``"L2"`` or ``"L3"``
      (:class:`~vtrade.execution.engine.Realism`; any case).
    - ``fees``: a named fee schedule of :data:`~vtrade.execution.fees.FEE_PRESETS`
      (``"none"``, ``"per-share"``, ``"maker-taker"``).
    - ``account_kind``: ``"cash"`` or ``"margin"`` (:func:`~vtrade.execution.knobs.account_kind`).
    - ``shorting_allowed``: short sales allowed (a margin account only: a cash account cannot
      borrow shares, so ``True`` with ``"cash"`` is refused rather than silently ignored).
    - ``initial_margin_pct`` / ``maintenance_margin_pct``: Reg T initial margin and the long
      maintenance rate in percent (50 and 25 by default); used by margin accounts.
    - ``market``: what the class trades, one of :data:`MARKETS`; ``replay_start`` the first
      replayed day (ISO date) of the universe; ``seed`` the seed of every simulated part
      (synthetic flow, the intraday paths), so two classes with one seed see one tape.

    Everything else (may change while the class trades):

    - ``allowed_symbols`` / ``allowed_sectors``: the universe students may trade, the union of
      the symbols and every instrument of the sectors; both ``None`` = everything the class's
      market lists. Sectors are matched without regard to case.
    - ``min_share_price``: no new or added position in a stock priced below it (USD), or None.
    - ``max_position_pct``: one position at most this % of account value, in (0, 100], or None.
    - ``max_trades_per_day``: orders a student may place a day, at least 1, or None.
    - ``trade_notes_required``: every order needs a note saying why (:meth:`check_note`).
    - ``registration_opens`` / ``registration_closes``: the window (UTC ns) in which students
      may join once registration is open; None = no bound on that side.
    - ``late_entry``: students may still join after ``registration_closes`` and once trading
      has started (until the class is frozen).
    - ``starts_at`` / ``ends_at``: the class's trading period (UTC ns of its market's time).
    - ``peers_visible``: students may see each other's portfolios (else only the leaderboard).
    """

    starting_cash: Decimal = Decimal(100_000)
    realism: str = "L2"
    fees: str = "per-share"
    account_kind: str = "cash"
    shorting_allowed: bool = False
    initial_margin_pct: Decimal = Decimal(50)
    maintenance_margin_pct: Decimal = Decimal(25)
    market: str = "universe"
    replay_start: str = "2017-10-02"
    seed: int = 7
    allowed_symbols: frozenset[str] | None = None
    allowed_sectors: frozenset[str] | None = None
    min_share_price: Decimal | None = None
    max_position_pct: Decimal | None = None
    max_trades_per_day: int | None = None
    trade_notes_required: bool = False
    registration_opens: int | None = None
    registration_closes: int | None = None
    late_entry: bool = False
    starts_at: int | None = None
    ends_at: int | None = None
    peers_visible: bool = False

    def __post_init__(self) -> None:
        # Values are normalised in place (frozen to everyone else): cash "25000" -> Decimal,
        # realism "l2" -> "L2", so two equal presets compare and encode equal.
        def put(name: str, value: object) -> None:
            msgspec.structs.force_setattr(self, name, value)

        cash = _decimal(self.starting_cash, "starting cash")
        if not 0 < cash <= _MAX_CASH:
            raise _out_of_range(f"Starting cash must be more than $0 and at most $1,000,000,000,000, "
                                f"got {self.starting_cash}")  # fmt: skip
        put("starting_cash", cash_amount(cash))
        realism = self.realism.strip() if isinstance(self.realism, str) else self.realism
        by_key = {r.value.lower(): r.value for r in Realism}
        if not isinstance(realism, str) or realism.lower() not in by_key:
            raise _out_of_range(f"Realism must be one of {', '.join(r.value for r in Realism)}, got {self.realism!r}")
        put("realism", by_key[realism.lower()])
        if self.fees not in FEE_PRESETS:
            raise _out_of_range(f"Fees must be one of {', '.join(FEE_PRESETS)}, got {self.fees!r}")
        try:
            put("account_kind", account_kind(self.account_kind))
        except ValueError:
            raise _out_of_range(f"The account kind must be 'cash' or 'margin', got {self.account_kind!r}") from None
        for name in ("shorting_allowed", "trade_notes_required", "late_entry", "peers_visible"):
            if not isinstance(getattr(self, name), bool):
                raise _out_of_range(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.shorting_allowed and self.account_kind == "cash":
            raise _out_of_range("Short selling needs margin accounts: a cash account cannot borrow shares; "
                                "choose account_kind='margin' or shorting_allowed=False")  # fmt: skip
        if self.market not in MARKETS:
            raise _out_of_range(f"The market must be one of {', '.join(MARKETS)}, got {self.market!r}")
        try:
            date.fromisoformat(self.replay_start)
        except (TypeError, ValueError):
            raise _out_of_range(f"The replay start must be a date like 2017-10-02, got {self.replay_start!r}") from None
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise _out_of_range(f"The seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        initial = _pct(self.initial_margin_pct, "initial margin")
        maintenance = _pct(self.maintenance_margin_pct, "maintenance margin", upper=initial)
        put("initial_margin_pct", initial)
        put("maintenance_margin_pct", maintenance)

        put("allowed_symbols", _names(self.allowed_symbols, "allowed symbols"))
        put("allowed_sectors", _names(self.allowed_sectors, "allowed sectors"))
        if self.allowed_symbols is not None and self.allowed_sectors is None and not self.allowed_symbols:
            raise _out_of_range("The allowed universe is empty: allow some symbols or sectors, or None for all")
        if self.min_share_price is not None:
            put("min_share_price", _decimal(self.min_share_price, "minimum share price"))
        if self.max_position_pct is not None:
            put("max_position_pct", _pct(self.max_position_pct, "max position"))
        cap = self.max_trades_per_day
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise _out_of_range(f"The trades-per-day cap must be a whole number of at least 1 (or None), got {cap!r}")

        opens = _time(self.registration_opens, "registration opening")
        closes = _time(self.registration_closes, "registration closing")
        if opens is not None and closes is not None and closes <= opens:
            raise _out_of_range("Registration must close after it opens")
        starts, ends = _time(self.starts_at, "start"), _time(self.ends_at, "end")
        if starts is not None and ends is not None and ends <= starts:
            raise _out_of_range("The class must end after it starts")

    # ------------------------------------------------------------------ changes
    def changed(self, patch: RulesPatch) -> ClassRules:
        """These rules with ``patch``'s fields set (validated as a whole: a refusal leaves
        these rules as they were).

        >>> ClassRules().changed(RulesPatch(account_kind="margin", shorting_allowed=True)).shorting_allowed
        True
        """
        values = msgspec.structs.asdict(self) | patch.fields()
        return ClassRules(**values)

    # ------------------------------------------------------------------ the broker's rules
    @property
    def kind(self) -> AccountKind:
        """``account_kind`` typed for :meth:`~vtrade.execution.broker.Brokerage.open_account`."""
        return "margin" if self.account_kind == "margin" else "cash"

    @property
    def realism_level(self) -> Realism:
        """The engine's :class:`~vtrade.execution.engine.Realism` (``LiveConfig.realism``)."""
        return Realism(self.realism)

    def universe(self, instruments: Iterable[Instrument] | None = None) -> frozenset[str] | None:
        """The symbols students may trade (None = all): ``allowed_symbols`` plus every one of
        ``instruments`` in an allowed sector. With ``instruments`` given, a symbol the class's
        market does not list is refused, so a typo is not a silently empty universe.

        >>> from vtrade.core.instruments import us_equity
        >>> ClassRules(allowed_symbols=frozenset({"SPY"})).universe([us_equity("QQQ")])
        Traceback (most recent call last):
        ...
        vtrade.classroom.errors.ClassroomError: SPY is not traded in this class's market
        """
        if self.allowed_symbols is None and self.allowed_sectors is None:
            return None
        insts = list(instruments) if instruments is not None else None
        symbols = set(self.allowed_symbols or ())
        if insts is not None:
            listed = {i.symbol for i in insts}
            missing = sorted(symbols - listed)
            if missing:
                raise _out_of_range(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                                    "not traded in this class's market")  # fmt: skip
        if self.allowed_sectors:
            if insts is None:
                raise ValueError("allowed sectors need the class's instruments to know which symbols they hold")
            sectors = {s.casefold() for s in self.allowed_sectors}
            symbols |= {i.symbol for i in insts if i.sector is not None and i.sector.casefold() in sectors}
        return frozenset(symbols)

    def session_limits(self, instruments: Iterable[Instrument] | None = None, **extra: Any) -> SessionLimits:
        """The :class:`~vtrade.execution.accounts.SessionLimits` the broker enforces for this
        class: universe (:meth:`universe`), minimum share price, max position % of NAV, the
        trades-per-day cap (``max_orders_per_day``: every order placed counts) and shorting.
        ``extra`` passes the limits a class does not set (borrow rates, hard-to-borrow set)."""
        return SessionLimits(
            allowed_symbols=self.universe(instruments),
            max_position_pct_nav=self.max_position_pct,
            max_orders_per_day=self.max_trades_per_day,
            min_share_price=self.min_share_price,
            shorting_allowed=self.shorting_allowed,
            **extra,
        )

    def margin_policy(self) -> MarginPolicy:
        """The broker's :class:`~vtrade.execution.accounts.MarginPolicy`: the class's initial and
        long maintenance rates; short maintenance and the liquidation buffer at their defaults.

        >>> ClassRules(initial_margin_pct=60).margin_policy().initial
        Decimal('0.6')
        """
        return MarginPolicy(initial=self.initial_margin_pct / _HUNDRED,
                            maintenance_long=self.maintenance_margin_pct / _HUNDRED)  # fmt: skip

    def fee_model(self) -> FeeModel:
        """The engine's and broker's fee model (:func:`~vtrade.execution.fees.fee_preset`)."""
        return fee_preset(self.fees)

    def check_note(self, note: object) -> str:
        """The order's trade note, cleaned (:func:`~vtrade.classroom.text.clean_text`); the
        order entry calls it before an order goes to the broker. A missing note is refused
        (``note_required``) when the class requires notes, else it is ``""``.

        >>> ClassRules(trade_notes_required=True).check_note("  earnings beat ")
        'earnings beat'
        >>> ClassRules(trade_notes_required=True).check_note("")
        Traceback (most recent call last):
        ...
        vtrade.classroom.errors.ClassroomError: This class asks for a note with every trade: say in a sentence why
        """
        from vtrade.classroom.text import NOTE_MAX, clean_text

        if note is None or (isinstance(note, str) and not note.strip()):
            if self.trade_notes_required:
                raise ClassroomError(
                    "note_required", "This class asks for a note with every trade: say in a sentence why"
                )
            return ""
        return clean_text(note, "trade note", NOTE_MAX, multiline=True)


class RulesPatch(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """A partial change of :class:`ClassRules`: only the fields given change (``UNSET`` =
    unchanged; ``None`` where the rule allows it switches a limit off). Encoded as a map of just
    the changed fields, so the log says what the teacher changed.

    >>> RulesPatch(peers_visible=True).fields()
    {'peers_visible': True}
    """

    starting_cash: Decimal | msgspec.UnsetType = msgspec.UNSET
    realism: str | msgspec.UnsetType = msgspec.UNSET
    fees: str | msgspec.UnsetType = msgspec.UNSET
    account_kind: str | msgspec.UnsetType = msgspec.UNSET
    shorting_allowed: bool | msgspec.UnsetType = msgspec.UNSET
    initial_margin_pct: Decimal | msgspec.UnsetType = msgspec.UNSET
    maintenance_margin_pct: Decimal | msgspec.UnsetType = msgspec.UNSET
    market: str | msgspec.UnsetType = msgspec.UNSET
    replay_start: str | msgspec.UnsetType = msgspec.UNSET
    seed: int | msgspec.UnsetType = msgspec.UNSET
    allowed_symbols: frozenset[str] | msgspec.UnsetType | None = msgspec.UNSET
    allowed_sectors: frozenset[str] | msgspec.UnsetType | None = msgspec.UNSET
    min_share_price: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    max_position_pct: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    max_trades_per_day: int | msgspec.UnsetType | None = msgspec.UNSET
    trade_notes_required: bool | msgspec.UnsetType = msgspec.UNSET
    registration_opens: int | msgspec.UnsetType | None = msgspec.UNSET
    registration_closes: int | msgspec.UnsetType | None = msgspec.UNSET
    late_entry: bool | msgspec.UnsetType = msgspec.UNSET
    starts_at: int | msgspec.UnsetType | None = msgspec.UNSET
    ends_at: int | msgspec.UnsetType | None = msgspec.UNSET
    peers_visible: bool | msgspec.UnsetType = msgspec.UNSET

    def fields(self) -> dict[str, Any]:
        """The fields this patch sets, by name."""
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not msgspec.UNSET}

    def normalized(self, rules: ClassRules) -> RulesPatch:
        """This patch with each value as ``rules.changed(self)`` stores it (``"25000"`` ->
        ``Decimal``), minus fields it would not change: what goes on the log."""
        after = rules.changed(self)
        keep = {k: getattr(after, k) for k in self.fields() if getattr(after, k) != getattr(rules, k)}
        return RulesPatch(**keep)
