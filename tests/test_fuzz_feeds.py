"""Fuzzed feed files: every parser either reads a corrupted file or raises a DataError naming it.

Property-based (hypothesis, derandomized so CI is deterministic) over every feed format, seeded
with the first few hundred lines of the shipped files (see ``vtrade._fuzz``). Corruptions of the
gzip stream itself must give the clean file's events or an error; text-level corruptions may
legitimately read as other data, but never as a bare KeyError, IndexError, TypeError, ...
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtrade._fuzz import FEED_SEEDS, FeedCase, head_lines
from vtrade.core.errors import DataError, UnknownFormatError
from vtrade.market.feeds import open_feed
from vtrade.market.feeds._io import numbered_lines

FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
NAMES = sorted(FEED_SEEDS)
DATA = Path(__file__).parents[1] / "data"
SHIPPED_GZ = sorted(p for d in ("intraday", "taq", "crypto", "equities_daily") for p in (DATA / d).glob("*.gz"))


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[FeedCase, list[object]]]:
    """Each format's seed case and the events of its clean slice (which must read cleanly)."""
    out = {}
    for name in NAMES:
        case = FeedCase.make(name, tmp_path_factory.mktemp(name))
        clean = case.read(case.write(case.texts))
        assert isinstance(clean, list) and clean, f"the clean {name} seed must read: {clean}"
        out[name] = (case, clean)
    return out


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(rnd=st.randoms(use_true_random=False), which=st.integers(0, 1))
def test_corrupted_text_reads_or_names_file_and_line(cases, name: str, rnd: random.Random, which: int) -> None:
    from vtrade._fuzz import mutate_text

    case, _ = cases[name]
    texts = list(case.texts)
    i = which % len(texts)
    texts[i] = mutate_text(texts[i], rnd)
    case.read(case.write(texts))  # Crash or a bare exception fails the test


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_corrupted_gzip_gives_the_clean_events_or_an_error(cases, name: str, rnd: random.Random) -> None:
    from vtrade._fuzz import mutate_gzip

    case, clean = cases[name]
    stored = gzip.compress(case.texts[0], mtime=0)
    got = case.read(case.write(case.texts, raw={0: mutate_gzip(stored, rnd)}))
    if isinstance(got, list):
        assert got == clean  # the CRC-32 check leaves no silent corruption
    else:
        assert isinstance(got, DataError)


def _complete_lines(data: bytes) -> int:
    """Lines fully decodable from a (truncated) gzip stream, computed independently of vtrade."""
    z = zlib.decompressobj(wbits=31)
    try:
        out = z.decompress(data)
    except zlib.error:
        out = b""
    return out.count(b"\n")


@pytest.mark.parametrize("path", SHIPPED_GZ, ids=lambda p: p.name)
def test_truncated_gzip_is_reported_at_the_first_unreadable_line(tmp_path: Path, path: Path) -> None:
    data = path.read_bytes()
    # A few offsets, kept within the first ~300 kB so the test stays fast on the big files.
    for cut in sorted({min(len(data) - 9, n) for n in (40, 5_000, 77_777, 300_001)}):
        cut_path = tmp_path / path.name
        cut_path.write_bytes(data[:cut])
        with pytest.raises(DataError) as err:
            for _ in open_feed(cut_path, "lobster" if "message" in path.name else "auto"):
                pass
        # The slice may hold bad data that is reported first (a sub-penny SPY print): only when
        # the error is the truncation must it name the first line the stream did not deliver.
        if "gzip" in err.value.reason:
            assert err.value.line == _complete_lines(data[:cut]) + 1, (cut, str(err.value))
        else:
            assert err.value.line is not None and err.value.line <= _complete_lines(data[:cut])


def test_a_corrupt_byte_inside_the_stream_names_its_line(tmp_path: Path) -> None:
    text = b"".join(b"%06d,some,text,here\n" % i for i in range(50_000))
    stored = bytearray(gzip.compress(text, compresslevel=1))
    stored[len(stored) // 2] ^= 0xFF
    p = tmp_path / "x.csv.gz"
    p.write_bytes(bytes(stored))
    with pytest.raises(DataError, match="corrupt gzip") as err:
        last = 0
        for lineno, _ in numbered_lines(p):
            last = lineno
    # Every line before the reported one was delivered. (A flipped literal may decode as other
    # text and be caught only by the CRC-32 at the end: the line is then the last one.)
    assert err.value.line == last + 1 and last > 1000


def test_empty_archives_binary_and_wrong_format_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    gz_empty = tmp_path / "empty.csv.gz"
    gz_empty.write_bytes(gzip.compress(b""))
    zipped = tmp_path / "bars.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("bars.csv", "a,b\n")
    tgz = tmp_path / "bars.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.addfile(tarfile.TarInfo("bars.csv"), io.BytesIO(b""))
    cases = {
        empty: "empty file",
        gz_empty: "empty file",
        zipped: "zip archives are not read: unzip first",
        tgz: "tar archives are not read",
        _write(tmp_path / "x.bz2", b"BZh91AY&SY" + bytes(20)): "bzip2",
        _write(tmp_path / "x.xz", b"\xfd7zXZ\x00" + bytes(20)): "xz",
        _write(tmp_path / "x.zst", b"\x28\xb5\x2f\xfd" + bytes(20)): "zstd",
        _write(tmp_path / "x.parquet", b"PAR1" + bytes(20) + b"PAR1"): "Parquet",
        _write(tmp_path / "x.bin", b"abc\ndef\x00ghi"): "binary data",
        _write(tmp_path / "x.txt", b"hello,world\n1,2\n"): "unrecognised format (known: binance, daily",
    }
    for path, message in cases.items():
        with pytest.raises(DataError, match=message.replace("(", r"\(")) as err:
            open_feed(path)
        assert err.value.path == str(path)
    with pytest.raises(UnknownFormatError) as err:
        open_feed(tmp_path / "x.bin")
    assert err.value.line == 2
    # The format's name is a parameter the Python API and the CLI spell differently.
    with pytest.raises(UnknownFormatError) as err:
        open_feed(tmp_path / "x.txt")
    assert str(err.value).endswith("; pass format=")
    assert err.value.render({"format": "--format"}.get).endswith("; pass --format")


def test_bad_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    seed = head_lines(FEED_SEEDS["binance-spot"][0], 50).split(b"\n")
    seed[29] = seed[29][:40] + b"\xff\xfe" + seed[29][40:]
    p = _write(tmp_path / "spot.jsonl", b"\n".join(seed))
    with pytest.raises(DataError, match="not UTF-8") as err:
        list(open_feed(p))
    assert err.value.line == 30


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_dates_beyond_nanosecond_timestamps_are_data_errors(tmp_path: Path) -> None:
    """Found by the fuzzer: year 9999 overflowed int64 nanoseconds (a bare OverflowError)."""
    rows = b"date,ticker,open,high,low,close,volume\n2013-01-02,MMM,1,1,1,1,5\n9999-01-02,MMM,1,1,1,1,5\n"
    p = _write(tmp_path / "d.csv", rows)
    with pytest.raises(DataError, match="outside the 1678-2262 range") as err:
        list(open_feed(p))
    assert err.value.line == 3


def test_a_missing_file_fails_in_open_feed_whatever_the_format(tmp_path: Path) -> None:
    """Found by the fuzzer: with a symbol given, the TAQ opener read nothing and the export
    crashed later with a bare FileNotFoundError."""
    with pytest.raises(DataError, match="no such file"):
        open_feed(tmp_path / "nope.csv", "taq-quotes", symbol="IBM")


def test_a_blank_first_ticker_is_a_data_error(tmp_path: Path) -> None:
    """Found by the fuzzer: the first row's blank ticker reached Instrument() (a bare ValueError)."""
    p = _write(tmp_path / "d.csv", b"date,ticker,open,high,low,close,volume\n2013-01-02,,1,1,1,1,5\n")
    with pytest.raises(DataError, match="bad ticker ''") as err:
        open_feed(p)
    assert err.value.line == 2
