"""Streaming access to plain or gzipped text files, with errors that name file and line.

Every feed reads through :func:`open_source` (the CSV readers hand its byte stream to pyarrow)
or :func:`numbered_lines` on top of it, so these surface as one
:class:`~vtrade.core.errors.DataError` naming ``path:line`` instead of a bare ``EOFError``,
``zlib.error`` or ``UnicodeDecodeError`` from deep inside a library:

- a truncated or corrupt gzip stream: reported at the first line that could not be read
  completely (every complete line before it is still delivered and parsed);
- bytes that are not UTF-8: reported at their line;
- an empty file, an archive (zip, tar), another compression (bzip2, xz, zstd, ...), a columnar
  binary format (Parquet, Arrow) or other binary data: each named for what it is.

>>> import gzip, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt.gz"
>>> _ = p.write_bytes(gzip.compress(b"a\\nb\\n"))
>>> list(numbered_lines(p))
[(1, 'a'), (2, 'b')]
>>> _ = p.write_bytes(gzip.compress(b"a\\nb\\nc\\n")[:-8])  # cut off the trailer: all 3 lines read
>>> list(numbered_lines(p))
Traceback (most recent call last):
...
vtrade.core.errors.DataError: ...x.txt.gz:4: truncated or corrupt gzip stream (it ends before its end-of-stream marker)
"""

from __future__ import annotations

import contextlib
import io
import zlib
from collections.abc import Callable, Generator
from contextvars import ContextVar
from pathlib import Path
from typing import IO

from vtrade.core.errors import DataError, UnknownFormatError

#: Receives the number of (compressed) bytes read since its last call. Long-running callers
#: such as the book export set it to drive a progress bar without threading it through feeds.
progress_sink: ContextVar[Callable[[int], None] | None] = ContextVar("progress_sink", default=None)
_REPORT_EVERY = 2048  # lines
_GZIP = b"\x1f\x8b"
_READ = 1 << 16  # compressed bytes per read: small enough that salvaging a corrupt chunk is cheap
_HEAD = 4096  # decoded bytes inspected for binary content

# Leading bytes of formats that are not text; the message says what to do instead.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip archives are not read: unzip first"),
    (b"PK\x05\x06", "zip archives are not read: unzip first (this one is empty)"),
    (b"BZh", "bzip2-compressed files are not read: decompress first (bunzip2) or recompress with gzip"),
    (b"\xfd7zXZ\x00", "xz-compressed files are not read: decompress first (unxz) or recompress with gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed files are not read: decompress first (unzstd) or recompress with gzip"),
    (b"\x04\x22\x4d\x18", "lz4-compressed files are not read: decompress first (unlz4) or recompress with gzip"),
    (b"7z\xbc\xaf\x27\x1c", "7z archives are not read: extract first"),
    (b"PAR1", "a Parquet file, not a recorded feed (read it with pandas.read_parquet)"),
    (b"ARROW1", "an Arrow IPC file, not a recorded feed (read it with pyarrow.ipc)"),
    (b"\xff\xfe", "UTF-16 text is not read: save the file as UTF-8"),
    (b"\xfe\xff", "UTF-16 text is not read: save the file as UTF-8"),
)


class _Inflater(io.RawIOBase):
    """Gzip decompression (multi-member, CRC-checked) that never raises mid-stream.

    When the stream breaks (truncated, corrupt, bad checksum) it first hands out every byte
    that was decodable, up to the last complete line, then reports a clean end of file and
    keeps the reason in :attr:`failure`. Readers that buffer ahead (``TextIOWrapper``,
    pyarrow's CSV reader) therefore parse every complete line, and the error can name the
    first line that was not: the count of newlines handed out, plus one.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer (CRC-32, length)
        self._in = b""  # compressed input not yet consumed
        self._out = bytearray()  # decompressed output not yet handed out
        self._member_started = False
        self._eof = False
        self.failure: str | None = None
        self.newlines = 0  # newlines handed out so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = len(buffer)
        while len(self._out) < want and not self._eof:
            self._inflate()
        n = min(want, len(self._out))
        buffer[:n] = self._out[:n]
        self.newlines += self._out.count(b"\n", 0, n)
        del self._out[:n]
        return n

    def _inflate(self) -> None:
        if not self._in:
            self._in = self._raw.read(_READ)
            if not self._in:
                if self._member_started:
                    self._fail("truncated or corrupt gzip stream (it ends before its end-of-stream marker)")
                self._eof = True
                return
        if not self._member_started:
            # Between members gzip allows zero padding; anything else must be a new member.
            self._in = self._in.lstrip(b"\x00")
            if not self._in:
                return
            self._member_started = True
        before = self._z.copy()
        data, self._in = self._in, b""
        try:
            self._out += self._z.decompress(data, _READ * 16)
            self._in = self._z.unconsumed_tail
        except zlib.error as exc:
            self._out += _salvage(before, data)
            self._fail(f"truncated or corrupt gzip stream ({exc})")
            return
        if self._z.eof:  # end of one member: the rest of the file may hold another
            self._in = self._z.unused_data + self._in
            self._z = zlib.decompressobj(wbits=31)
            self._member_started = False

    def _fail(self, reason: str) -> None:
        # A line is known complete only once its newline was decoded: drop the partial tail.
        keep = self._out.rfind(b"\n") + 1
        del self._out[keep:]
        self.failure = reason
        self._eof = True


def _salvage(z: zlib._Decompress, data: bytes) -> bytes:
    """What ``z`` decodes of ``data`` before the first byte it rejects (one byte at a time: only
    run once, on the chunk that failed, so that the error can name the exact line)."""
    out = bytearray()
    for i in range(len(data)):
        try:
            out += z.decompress(data[i : i + 1])
        except zlib.error:
            break
    return bytes(out)


class Source:
    """An open data file: :attr:`stream` yields its decoded bytes (un-gzipped), :attr:`raw` is
    the file on disk (its position measures progress). Use as a context manager.

    After :attr:`stream` ends, call :meth:`check_complete`: a gzip stream that broke ended
    early but cleanly, and this raises the :class:`DataError` naming the first unreadable line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw: IO[bytes] = path.open("rb")
        try:
            magic = self.raw.read(8)
            self.raw.seek(0)
            self._inflater = _Inflater(self.raw) if magic.startswith(_GZIP) else None
            self.stream: io.BufferedReader = io.BufferedReader(self._inflater or self.raw, buffer_size=_READ)
            self._check_kind(magic)
        except BaseException:
            self.raw.close()
            raise

    def _check_kind(self, magic: bytes) -> None:
        if not magic:
            raise DataError(self.path, None, "empty file")
        for prefix, message in _MAGIC:
            if magic.startswith(prefix):
                raise UnknownFormatError(self.path, None, message)
        head = self.stream.peek(_HEAD)[:_HEAD]
        if not head and self._inflater is not None:
            self.check_complete()  # truncated before the first line
            raise DataError(self.path, None, "empty file (the gzip stream holds no data)")
        if head[257:262] == b"ustar":
            gz = "gzipped " if self._inflater is not None else ""
            raise UnknownFormatError(self.path, None, f"{gz}tar archives are not read: extract first")
        if b"\x00" in head:
            line = head.count(b"\n", 0, head.index(b"\x00")) + 1
            raise UnknownFormatError(self.path, line, "binary data (a NUL byte), not a text feed")

    def check_complete(self) -> None:
        """DataError naming the first line a broken gzip stream did not deliver (no-op when whole)."""
        if self._inflater is not None and self._inflater.failure is not None:
            raise DataError(self.path, self._inflater.newlines + 1, self._inflater.failure)

    def close(self) -> None:
        self.stream.close()
        self.raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: str | Path) -> Source:
    """Open ``path`` as a :class:`Source`: DataError for a missing, empty or non-text file."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "no such file")
    if not p.is_file():
        raise DataError(p, None, "not a regular file")
    return Source(p)


def check_source(path: str | Path) -> None:
    """DataError unless ``path`` is a readable text file (see :func:`open_source`); reads a few kB."""
    open_source(path).close()


def open_text(path: str | Path) -> IO[str]:
    """Open ``path`` for reading text, transparently un-gzipping ``.gz`` files.

    A broken gzip stream just ends early here; use :func:`numbered_lines` to have it reported.
    """
    return io.TextIOWrapper(open_source(path).stream, encoding="utf-8-sig", newline="")


def file_size(path: str | Path) -> int:
    """Size of ``path`` on disk in bytes (what progress is measured in)."""
    return Path(path).stat().st_size


def numbered_lines(path: str | Path) -> Generator[tuple[int, str], None, None]:
    """Yield ``(line_number, line_without_newline)`` from ``path``, 1-based, streaming.

    Lines end at ``\\n`` (a trailing ``\\r`` is dropped too); blank lines are skipped but
    counted. A UTF-8 byte-order mark is ignored. Lines are decoded one by one, so bad UTF-8 is
    reported at its own line, and a broken gzip stream at the first line it did not deliver.
    """
    lineno = 0
    sink = progress_sink.get()
    reported = 0
    with open_source(path) as src:
        for lineno, raw_line in enumerate(src.stream, 1):
            try:
                line = raw_line.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(path, lineno, f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})") from None
            if line:
                yield lineno, line
            if sink is not None and lineno % _REPORT_EVERY == 0:
                with contextlib.suppress(ValueError):  # tell() on a closed file at teardown
                    pos = src.raw.tell()
                    sink(pos - reported)
                    reported = pos
        src.check_complete()
        if sink is not None:
            sink(file_size(path) - reported)


def first_line(path: str | Path) -> str:
    """The first non-blank line of ``path`` ('' when it has none), for format sniffing."""
    with contextlib.closing(numbered_lines(path)) as lines:
        for _, line in lines:
            return line
    return ""
