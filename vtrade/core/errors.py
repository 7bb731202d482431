"""The exceptions vtrade raises. Each one says what was wrong and where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: How a front end spells a parameter: the CLI maps ``"format"`` to ``"--format"``; None when it
#: has no spelling for it (the Python one is shown then).
Spelling = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Fix:
    """The parameter that resolves an error, kept apart from the message so each front end can
    name it its own way: Python ``format=`` or ``format='binance'``, the CLI ``--format binance``.

    >>> Fix("interval", ("second", "minute")).render()
    "pass interval='second' or 'minute'"
    >>> Fix("interval", ("second", "minute")).render(lambda p: "--" + p)
    'pass --interval second or minute'
    """

    param: str
    examples: tuple[str, ...] = ()

    def render(self, spelling: Spelling | None = None) -> str:
        flag = spelling(self.param) if spelling is not None else None
        if flag is None:
            return f"pass {self.param}=" + " or ".join(repr(e) for e in self.examples)
        return f"pass {flag}" + (" " + " or ".join(self.examples) if self.examples else "")


class VtradeError(Exception):
    """Base class of every error vtrade raises on purpose.

    ``fix`` (optional) names the parameter that resolves it; ``str(err)`` spells it the Python
    way and :meth:`render` the way a front end (the CLI) spells its options.
    """

    fix: Fix | None = None

    def __init__(self, *args: object, fix: Fix | None = None) -> None:
        super().__init__(*args)
        if fix is not None:
            self.fix = fix

    def __str__(self) -> str:
        return self.render()

    def render(self, spelling: Spelling | None = None) -> str:
        """The message, with its fix (if any) in the words of ``spelling``'s front end."""
        text = super().__str__()
        if self.fix is None or (spelling is not None and spelling(self.fix.param) is None):
            return text  # a front end without that option: naming the Python parameter would not help
        return f"{text}; {self.fix.render(spelling)}"


class OffGridError(VtradeError, ValueError):
    """A price or size is not a whole number of the instrument's increment.

    vtrade never rounds silently: ``61000.05`` on a 0.1 tick grid is an error, not ``61000.0``.
    """


class DataError(VtradeError, ValueError):
    """A data file could not be read. Names the file and, where known, the 1-based line.

    >>> str(DataError("btc.jsonl.gz", 12, "malformed JSON"))
    'btc.jsonl.gz:12: malformed JSON'
    """

    def __init__(self, path: object, line: int | None, message: str, *, fix: Fix | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}", fix=fix)


class UnknownFormatError(DataError):
    """The file's format could not be recognised or is not one vtrade reads."""


class SequenceGapError(DataError):
    """A feed skipped updates: the book built from it would silently diverge from the venue's."""


class CrossedBookError(VtradeError):
    """An update left the best bid at or above the best ask. Names the offending event."""

    def __init__(self, message: str, *, event_index: int | None = None, seq: int | None = None) -> None:
        self.event_index = event_index
        self.seq = seq
        super().__init__(message)
