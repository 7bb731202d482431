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

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vtrade.core.errors import DataError


def open_text(path: str | Path) -> IO[str]:
    """Open ``path`` for reading text, transparently un-gzipping ``.gz`` files."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "no such file")
    if not p.is_file():
        raise DataError(p, None, "not a regular file")
    with p.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rt", encoding="utf-8", newline="")
    return p.open("r", encoding="utf-8", newline="")


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line_without_newline)`` from ``path``, 1-based, streaming.

    Blank lines are skipped (but counted). Decompression and decoding failures become a
    DataError naming the line at which the file stopped being readable.
    """
    lineno = 0
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):  # noqa: B007 - lineno is read in the except
                line = line.rstrip("\r\n")
                if line:
                    yield lineno, line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(path, lineno + 1, f"truncated or corrupt gzip stream ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(path, lineno + 1, f"not UTF-8 text ({exc.reason})") from exc


def first_line(path: str | Path) -> str:
    """The first non-blank line of ``path`` ('' for an empty file), for format sniffing."""
    for _, line in numbered_lines(path):
        return line
    return ""
