"""A person's signing keys, on their own machine (DESIGN.md §9): one Ed25519 key per account.

The key dir (``$VTRADE_KEY_DIR``, else ``~/.config/vtrade/keys``) is a folder only its owner may
enter (mode 0700; one open to others is refused, as ssh does). Per account it holds

- ``<account>.pem``: the private key, PKCS#8 PEM, created with mode 0600 and never rewritten;
- ``<account>.pub``: the raw public key as 64 hex digits (public: what the market registers).

The process that talks to the model never loads a private key. :meth:`KeyStore.public_key`
reads the ``.pub`` file; when the account has no key yet it has the signer subprocess
(:mod:`vtrade.runtime.signer`) make one. :meth:`KeyStore.create` and
:meth:`KeyStore.private_key` are for that subprocess only: it is the one place a private key
is generated, read and used.

Account names become file names percent-encoded (``c1:ann`` is ``c1%3Aann.pem``), and only the
names an intent may carry (:mod:`vtrade.copilot.intent`) are taken, so no name reaches outside
the key dir.

>>> import tempfile, os
>>> store = KeyStore(os.path.join(tempfile.mkdtemp(), "keys"))
>>> pub = store.create("ann")                     # (in the signer subprocess)
>>> store.public_key("ann") == pub, len(pub), oct(store.root.stat().st_mode & 0o777)
(True, 64, '0o700')
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from vtrade.copilot.signing import public_hex, valid_public_key
from vtrade.core.errors import VtradeError

__all__ = ["KEY_DIR_ENV", "KeyStore", "KeyStoreError", "default_key_dir", "public_key"]

KEY_DIR_ENV = "VTRADE_KEY_DIR"
# The account names an intent may carry (vtrade.copilot.intent): no separators, no leading dot.
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}")
_POSIX = os.name == "posix"


class KeyStoreError(VtradeError):
    """The key dir or a key file cannot be used (the message says why; it never holds key material)."""


def default_key_dir() -> Path:
    """``$VTRADE_KEY_DIR``, else ``~/.config/vtrade/keys``."""
    given = os.environ.get(KEY_DIR_ENV)
    return Path(given).expanduser() if given else Path.home() / ".config" / "vtrade" / "keys"


def _check_private(st: os.stat_result, what: str, path: Path) -> None:
    """Refuse a key dir or key file others may read or that someone else owns (POSIX)."""
    if not _POSIX:
        return
    if st.st_uid != os.getuid():
        raise KeyStoreError(f"the {what} {path} belongs to another user; keys must be your own")
    if st.st_mode & 0o077:
        mode = oct(stat.S_IMODE(st.st_mode))
        fix = "700" if what == "key dir" else "600"
        raise KeyStoreError(f"the {what} {path} is open to other users (mode {mode}): chmod {fix} {path}")


class KeyStore:
    """The key files of ``root`` (default :func:`default_key_dir`); see the module notes."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_key_dir()

    def _name(self, account: object) -> str:
        if not isinstance(account, str) or _ACCOUNT.fullmatch(account) is None:
            raise KeyStoreError(f"{account!r} is not an account name (letters, digits and ._:@- only)")
        return quote(account, safe="._-")

    def private_path(self, account: str) -> Path:
        return self.root / f"{self._name(account)}.pem"

    def public_path(self, account: str) -> Path:
        return self.root / f"{self._name(account)}.pub"

    def _dir(self, *, create: bool) -> Path:
        """The key dir, checked (and made with mode 0700 when ``create`` and missing)."""
        if create and not self.root.exists():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile: checked below
                self.root.mkdir(mode=0o700)
        try:
            st = self.root.stat()
        except FileNotFoundError:
            raise KeyStoreError(f"there is no key dir {self.root}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise KeyStoreError(f"the key dir {self.root} is not a directory")
        _check_private(st, "key dir", self.root)
        return self.root

    def has_key(self, account: str) -> bool:
        """Whether ``account`` has a key here (its private key file exists)."""
        return self.private_path(account).exists()

    def public_key(self, account: str) -> str:
        """``account``'s public key, hex. Read from the ``.pub`` file, never from the private key;
        an account without a key gets one, made by the signer subprocess (so this process never
        holds its private part)."""
        path = self.public_path(account)
        if not path.exists():
            from vtrade.runtime.signer import create_in_subprocess  # the signer imports this module

            create_in_subprocess(account, self.root)
        self._dir(create=False)
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"cannot read the public key {path}: {type(exc).__name__}") from None
        if not valid_public_key(text):
            raise KeyStoreError(f"{path} does not hold an Ed25519 public key (64 lower-case hex digits)")
        return text

    # -- the signer subprocess's side --------------------------------------------------------
    def create(self, account: str) -> str:
        """Make ``account``'s key unless it has one (a race with another process keeps the key
        that was written first); returns the public key, hex. For the signer subprocess."""
        pem_path = self.private_path(account)
        self._dir(create=True)
        if not pem_path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            tmp = self.root / f".{pem_path.name}.{secrets.token_hex(8)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
                    out.flush()
                    os.fsync(out.fileno())
                with contextlib.suppress(FileExistsError):  # a key is there: it is never replaced
                    os.link(tmp, pem_path)
            finally:
                tmp.unlink(missing_ok=True)
            del key, pem
        pub = public_hex(self.private_key(account))
        self._write_public(account, pub)
        return pub

    def private_key(self, account: str) -> Ed25519PrivateKey:
        """``account``'s private key. For the signer subprocess only: nothing else loads it."""
        path = self.private_path(account)
        self._dir(create=False)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise KeyStoreError(f"account {account!r} has no key in {self.root}") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot open the key file {path}: {type(exc).__name__}") from None
        with os.fdopen(fd, "rb") as f:
            _check_private(os.fstat(f.fileno()), "key file", path)
            data = f.read(64 * 1024)
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise KeyStoreError(f"{path} does not hold an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return key

    def _write_public(self, account: str, pub: str) -> None:
        path = self.public_path(account)
        if path.exists() and path.read_text(encoding="ascii", errors="replace").strip() == pub:
            return
        tmp = self.root / f".{path.name}.{secrets.token_hex(8)}.tmp"
        tmp.write_text(pub + "\n", encoding="ascii")
        os.replace(tmp, path)  # derived from the private key: rewriting it is always right


def public_key(account: str, key_dir: str | os.PathLike[str] | None = None) -> str:
    """``KeyStore(key_dir).public_key(account)``: the account's public key, hex (made on first use)."""
    return KeyStore(key_dir).public_key(account)
