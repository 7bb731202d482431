"""Streaming line access to plain or gzipped text files, with errors that name file and line.

Every feed reads through :func:`numbered_lines`, so a truncated gzip, bad bytes or a missing
file surface as one :class:`~vtrade.core.errors.DataError` naming ``path:line`` instead of a
bare ``EOFError`` from deep inside ``gzip``.

>>> import gzip, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt.gz"
>>> _ = p.write_bytes(gzip.compress(b"a\\nb\\n"))
>>> list(numbered_lines(p))
[(1, 'a'), (2, 'b')]
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO

from vtrade.core.errors import DataError

#: Receives the number of (compressed) bytes read since its last call. Long-running callers
#: such as the book export set it to drive a progress bar without threading it through feeds.
progress_sink: ContextVar[Callable[[int], None] | None] = ContextVar("progress_sink", default=None)
_REPORT_EVERY = 2048  # lines


def open_text(path: str | Path) -> IO[str]:
    """Open ``path`` for reading text, transparently un-gzipping ``.gz`` files."""
    return _open(path)[0]


def _open(path: str | Path) -> tuple[IO[str], IO[bytes]]:
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "no such file")
    if not p.is_file():
        raise DataError(p, None, "not a regular file")
    raw = p.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    binary: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw
    return io.TextIOWrapper(binary, encoding="utf-8", newline=""), raw


def file_size(path: str | Path) -> int:
    """Size of ``path`` on disk in bytes (what progress is measured in)."""
    return Path(path).stat().st_size


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line_without_newline)`` from ``path``, 1-based, streaming.

    Blank lines are skipped (but counted). Decompression and decoding failures become a
    DataError naming the line at which the file stopped being readable.
    """
    lineno = 0
    sink = progress_sink.get()
    reported = 0
    text, raw = _open(path)
    try:
        with raw, text:
            for lineno, line in enumerate(text, 1):
                line = line.rstrip("\r\n")
                if line:
                    yield lineno, line
                if sink is not None and lineno % _REPORT_EVERY == 0:
                    with contextlib.suppress(ValueError):  # tell() on a closed file at teardown
                        pos = raw.tell()
                        sink(pos - reported)
                        reported = pos
            if sink is not None:
                sink(file_size(path) - reported)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(path, lineno + 1, f"truncated or corrupt gzip stream ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(path, lineno + 1, f"not UTF-8 text ({exc.reason})") from exc


def first_line(path: str | Path) -> str:
    """The first non-blank line of ``path`` ('' for an empty file), for format sniffing."""
    for _, line in numbered_lines(path):
        return line
    return ""
