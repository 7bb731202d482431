"""Where a served market keeps what outlives the process: the data directory, and the two small
files this module owns in it (the cookie secret and the account-number counter). The market's own
journal lives there too (``LiveMarket(data_dir=...)``).

>>> default_data_dir({"VTRADE_STATE_DIR": "/srv/vt"})
PosixPath('/srv/vt')
>>> default_data_dir({"XDG_DATA_HOME": "/home/ada/.data", "HOME": "/home/ada"})
PosixPath('/home/ada/.data/vtrade')
>>> default_data_dir({"HOME": "/home/ada"})
PosixPath('/home/ada/.local/share/vtrade')
"""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from vtrade.core.errors import VtradeError

__all__ = ["AccountNumbers", "DataDirError", "default_data_dir", "prepare_data_dir", "server_secret"]

SECRET_FILE = "cookie-secret"
COUNTER_FILE = "account-counter"
SECRET_BYTES = 32


class DataDirError(VtradeError):
    """The data directory cannot be used (a file, not writable, unreadable secret); nothing changed."""


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The user's data directory for vtrade: ``$VTRADE_STATE_DIR``, else ``$XDG_DATA_HOME/vtrade``,
    else ``~/.local/share/vtrade`` (the XDG base-directory default). Nothing is created here.

    (Not ``$VTRADE_DATA_DIR``: that already names the folder of market data files read, see
    :mod:`vtrade.market.feeds.lean`; what the server writes is kept apart from what it reads.)"""
    env = os.environ if env is None else env
    if env.get("VTRADE_STATE_DIR"):
        return Path(env["VTRADE_STATE_DIR"]).expanduser()
    if env.get("XDG_DATA_HOME"):  # the spec says to ignore a relative one: fall through then
        xdg = Path(env["XDG_DATA_HOME"]).expanduser()
        if xdg.is_absolute():
            return xdg / "vtrade"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".local" / "share" / "vtrade"


def _fail(path: Path, why: str) -> DataDirError:
    return DataDirError(f"{str(path)!r} {why}")


def prepare_data_dir(path: str | os.PathLike[str]) -> Path:
    """Check ``path`` can hold vtrade's data and create it (with parents) if missing; returns it
    absolute. :class:`DataDirError` if it is a file or not writable.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> prepare_data_dir(d / "vt") == (d / "vt").resolve()
    True
    """
    target = Path(path).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise _fail(target, "is a file, not a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(target, f"cannot be created: {exc.strerror or exc}") from None
    # Root passes os.access on a read-only mount: only a real write says the directory is usable.
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        raise _fail(target, f"is not writable: {exc.strerror or exc}") from None
    return target.resolve()


def server_secret(data_dir: Path) -> bytes:
    """The server's cookie-signing secret, kept in ``data_dir`` (created on first use with
    :mod:`secrets`, mode 0600, so cookies issued before a restart still verify after it).

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> server_secret(d) == server_secret(d) and len(server_secret(d)) == 32
    True
    >>> oct((d / SECRET_FILE).stat().st_mode & 0o777)
    '0o600'
    """
    path = data_dir / SECRET_FILE
    try:
        # O_EXCL: two servers starting at once on one data dir must not each write their own.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(SECRET_BYTES))
            out.flush()
            os.fsync(out.fileno())
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise _fail(data_dir, f"has an unreadable {SECRET_FILE}: {exc.strerror or exc}") from None
    if len(secret) < SECRET_BYTES:  # a half-written file from a crash at first start: not a secret
        raise _fail(data_dir, f"has a damaged {SECRET_FILE} (delete it: browsers then get new accounts)")
    return secret


class AccountNumbers:
    """Account numbers that are never handed out twice, even across restarts and by several
    servers sharing ``data_dir`` (``vtrade up --ui-processes N``): the high-water mark is read
    and written (atomically, fsync'd) under a lock on the file before a number is returned. A
    name that a signed cookie carries is then nobody else's, even if its account was lost.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> n = AccountNumbers(d); n.next(), n.next()
    (1, 2)
    >>> AccountNumbers(d).next()
    3
    """

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self._path = data_dir / COUNTER_FILE
        self._lock = threading.Lock()
        self._read()  # a damaged counter fails now, before the server starts

    def _read(self) -> int:
        try:
            return int(self._path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise _fail(self._dir, f"has a damaged {COUNTER_FILE}: {exc}") from None

    def next(self) -> int:
        """The next unused number (persisted before it is returned)."""
        with self._lock, (self._dir / f"{COUNTER_FILE}.lock").open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # other processes on this dir; released on close
            number = self._read() + 1
            tmp = self._path.with_suffix(".tmp")
            with tmp.open("w") as out:
                out.write(f"{number}\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path)
            return number
