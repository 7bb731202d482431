"""The exceptions vtrade raises. Each one says what was wrong and where."""

from __future__ import annotations


class VtradeError(Exception):
    """Base class of every error vtrade raises on purpose."""


class OffGridError(VtradeError, ValueError):
    """A price or size is not a whole number of the instrument's increment.

    vtrade never rounds silently: ``61000.05`` on a 0.1 tick grid is an error, not ``61000.0``.
    """


class DataError(VtradeError, ValueError):
    """A data file could not be read. Names the file and, where known, the 1-based line.

    >>> str(DataError("btc.jsonl.gz", 12, "malformed JSON"))
    'btc.jsonl.gz:12: malformed JSON'
    """

    def __init__(self, path: object, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


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
