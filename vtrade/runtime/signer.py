"""Sign an order intent in a process of its own, so the process that talks to the model never
holds a private key (DESIGN.md §9).

The confirm button (notebook widget, dashboard card) calls :func:`sign_in_subprocess` with the
intent it showed; that runs this module as a command::

    python -m vtrade.runtime.signer --account ann [--key-dir D]   < intent.json   # prints the signature, hex
    python -m vtrade.runtime.signer --account ann [--key-dir D] --public-key     # prints the public key, hex

The signer reads the intent JSON on stdin and parses it again
(:func:`~vtrade.copilot.intent.parse_intent`): it signs only a valid intent, for the account it
was started for, that has not expired, and it signs the intent's canonical bytes (whatever key
order or spacing it was sent), never the text it received. Exit status: 0 done; 2 refused (the
intent is not valid, is for another account or has expired; bad arguments), with one line on
stderr saying why; 1 the key store cannot be used. Key material never reaches stdout, stderr
or the parent process; ``--public-key`` makes the account's key when it has none.

>>> from vtrade.copilot.intent import OrderIntent
>>> from vtrade.copilot.signing import verify
>>> from vtrade.runtime.keystore import KeyStore
>>> import tempfile, os, time
>>> keys = os.path.join(tempfile.mkdtemp(), "keys")
>>> pub = KeyStore(keys).public_key("ann")   # made by the signer subprocess; registered with the market
>>> i = OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity=10,
...                      order_type="market", limit_price=None, tif="day", nonce="ab" * 16,
...                      expires_ns=time.time_ns() + 60 * 10**9)
>>> verify(pub, sign_in_subprocess(i, "ann", keys), i.canonical())
True
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vtrade.copilot.intent import IntentError, OrderIntent, parse_intent
from vtrade.copilot.signing import sign, verify
from vtrade.core.errors import VtradeError
from vtrade.runtime.keystore import KeyStore, KeyStoreError

__all__ = ["SignerError", "create_in_subprocess", "main", "sign_in_subprocess"]

#: Exit status of a refused intent or bad arguments, and of an unusable key store.
REFUSED, KEYSTORE = 2, 1
_MAX_STDIN = 64 * 1024
_TIMEOUT_S = 60.0


class SignerError(VtradeError):
    """The signer refused or failed: ``status`` is its exit status (2 refused, 1 key store),
    the message its one line of explanation."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, exit 2, no usage dump
        raise _Refused(f"signer: {message}")


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = _Parser(prog="python -m vtrade.runtime.signer", description="Sign a vtrade order intent read on stdin.")
    p.add_argument("--account", required=True, help="the account whose key signs (the intent's own account)")
    p.add_argument("--key-dir", default=None, help="the key dir (default $VTRADE_KEY_DIR or ~/.config/vtrade/keys)")
    p.add_argument("--public-key", action="store_true", help="print the account's public key (made if missing)")
    return p.parse_args(argv)


def _intent(data: bytes, account: str, now_ns: int) -> OrderIntent:
    if len(data) > _MAX_STDIN:
        raise _Refused(f"refused: the input is over {_MAX_STDIN} bytes; an intent is a few hundred")
    try:
        intent = parse_intent(data)
    except IntentError as exc:
        raise _Refused(f"refused: not a valid intent: {exc}") from None
    if intent.account != account:
        raise _Refused(f"refused: the intent is for account {intent.account!r}, not {account!r}")
    if intent.expires_at <= now_ns:
        raise _Refused("refused: the intent has expired; ask the copilot for a fresh proposal")
    return intent


def main(argv: Sequence[str] | None = None) -> int:
    """The command (see the module notes); returns the exit status."""
    try:
        args = _args(argv)
        store = KeyStore(args.key_dir)
        try:
            store.private_path(args.account)  # an account name that cannot be one is refused input
        except KeyStoreError as exc:
            raise _Refused(f"refused: {exc}") from None
        if args.public_key:
            print(store.create(args.account))
            return 0
        intent = _intent(sys.stdin.buffer.read(_MAX_STDIN + 1), args.account, time.time_ns())
        signature = sign(store.private_key(args.account), intent.canonical())
    except _Refused as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return REFUSED
    except KeyStoreError as exc:
        print(f"signer: {exc}".splitlines()[0], file=sys.stderr)
        return KEYSTORE
    print(signature)
    return 0


def _command(account: str, key_dir: str | os.PathLike[str] | None, *extra: str) -> list[str]:
    if not isinstance(account, str):
        raise TypeError(f"an account is text, got {type(account).__name__}")
    cmd = [sys.executable, "-m", "vtrade.runtime.signer", "--account", account]
    if key_dir is not None:
        cmd += ["--key-dir", os.fspath(key_dir)]
    return [*cmd, *extra]


def _env() -> dict[str, str]:
    # The child imports this same vtrade, wherever the parent found it (a source tree, a venv).
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _run(cmd: list[str], stdin: bytes) -> str:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=_TIMEOUT_S, env=_env(), check=False)
    except subprocess.TimeoutExpired:
        raise SignerError(KEYSTORE, f"the signer did not answer within {_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SignerError(proc.returncode, lines[-1] if lines else f"the signer failed (status {proc.returncode})")
    return proc.stdout.decode("ascii", "replace").strip()


def sign_in_subprocess(intent: OrderIntent, account: str, key_dir: str | os.PathLike[str] | None = None) -> str:
    """The signature (hex) of ``account``'s key over ``intent``'s canonical bytes, made by the
    signer subprocess: this process never loads the key. :class:`SignerError` when the signer
    refuses (another account's intent, an expired one) or cannot use the key store; the
    signature is checked against the account's public key before it is returned."""
    if not isinstance(intent, OrderIntent):
        raise TypeError(f"sign an OrderIntent, got {type(intent).__name__}")
    message = intent.canonical()
    signature = _run(_command(account, key_dir), message)
    if not verify(KeyStore(key_dir).public_key(account), signature, message):
        raise SignerError(KEYSTORE, f"the signer's answer is not a valid signature by {account!r}'s key")
    return signature


def create_in_subprocess(account: str, key_dir: str | os.PathLike[str] | None = None) -> str:
    """Make ``account``'s key (unless it has one) in the signer subprocess; returns its public key, hex."""
    return _run(_command(account, key_dir, "--public-key"), b"")


if __name__ == "__main__":
    sys.exit(main())
