"""Signed tokens: a value plus an HMAC-SHA256 of it under a server secret, so a value the server
handed out (an account name in a browser cookie) comes back only if nobody changed it.

Pure functions, no I/O: the secret is read and kept by the caller (``vtrade.runtime.datadir``).

>>> secret = b"s" * 32
>>> token = sign_token("trader-7", secret)
>>> verify_token(token, secret)
'trader-7'
>>> other_name = sign_token("trader-8", secret).split(".")[0]
>>> verify_token(other_name + "." + token.split(".")[1], secret) is None  # another name, this MAC
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["ACCOUNT", "STUDENT", "TEACHER", "sign_token", "verify_token"]

#: Bound into every MAC so that a MAC made with the same secret for some other purpose (another
#: token kind) never verifies as this kind. Bump the version to retire every token of a kind.
ACCOUNT = "vtrade-account-token-v1"
#: A class student's token (``vtrade.runtime.classroom``): never an account cookie, nor vice versa.
STUDENT = "vtrade-class-student-v1"
#: A teacher's sign-in cookie (``vtrade.runtime.classroom``): proves the secret was given once.
TEACHER = "vtrade-class-teacher-v1"
MIN_SECRET_BYTES = 16


def _mac(value: bytes, secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, purpose.encode() + b"\x00" + value, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    # URL-safe without padding: a cookie value needs no quoting then (no '=', ';', ',' or space).
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"a token secret must be at least {MIN_SECRET_BYTES} bytes")


def sign_token(value: str, secret: bytes, purpose: str = ACCOUNT) -> str:
    """``value`` and its MAC under ``secret`` as one cookie-safe string: ``<value b64>.<mac b64>``.

    >>> sign_token("ada", b"k" * 16).startswith("YWRh.")
    True
    """
    _check_secret(secret)
    if not isinstance(value, str) or not value:
        raise ValueError("only a non-empty string can be signed")
    raw = value.encode("utf-8")
    return f"{_b64(raw)}.{_b64(_mac(raw, secret, purpose))}"


def verify_token(token: object, secret: bytes, purpose: str = ACCOUNT) -> str | None:
    """The value ``token`` carries if its MAC is right under ``secret`` for ``purpose``; None for
    anything else (tampered, signed with another secret or for another purpose, malformed, not a
    string). Never raises on bad input: a browser can send anything.

    >>> verify_token("not a token", b"k" * 16) is None
    True
    >>> verify_token(sign_token("ada", b"k" * 16, STUDENT), b"k" * 16) is None  # not an account token
    True
    """
    _check_secret(secret)
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4096:
        return None
    value_b64, mac_b64 = token.split(".")
    try:
        raw, mac = _unb64(value_b64), _unb64(mac_b64)
    except (binascii.Error, ValueError):  # not base64, or not ASCII
        return None
    # One spelling per token: the decoder skips stray characters and the unused low bits of the
    # last one, so without this check many strings would pass as the same token.
    if _b64(raw) != value_b64 or _b64(mac) != mac_b64:
        return None
    # Constant-time compare: how long the check takes says nothing about how much of a forged MAC
    # was right.
    if not raw or not hmac.compare_digest(mac, _mac(raw, secret, purpose)):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # only reachable with the secret: still not a value we sign
        return None
