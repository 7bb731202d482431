"""Ed25519 signatures over intents' canonical bytes.

The private key belongs to the person's side (their browser, or a key file only the signer
subprocess reads; see :mod:`vtrade.runtime.keystore`). This module only turns keys and
signatures into text and back and checks signatures; it never stores or fetches a key.

Public keys and signatures travel as lower-case hex (64 and 128 digits).

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.generate()
>>> sig = sign(key, b"intent bytes")
>>> verify(public_hex(key), sig, b"intent bytes"), verify(public_hex(key), sig, b"intent bytez")
(True, False)
"""

from __future__ import annotations

import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["public_hex", "sign", "valid_public_key", "verify"]

_PUBLIC = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


def public_hex(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key of ``key``, hex."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def valid_public_key(text: object) -> bool:
    """Whether ``text`` is a 64-digit lower-case hex Ed25519 public key that decodes."""
    if not isinstance(text, str) or _PUBLIC.fullmatch(text) is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError:
        return False
    return True


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The signature of ``message``, hex (128 digits)."""
    return key.sign(message).hex()


def verify(public_key: str, signature: object, message: bytes) -> bool:
    """Whether ``signature`` (hex) is ``public_key``'s over exactly ``message``; False for
    anything malformed, never an exception."""
    if not valid_public_key(public_key) or not isinstance(signature, str) or _SIGNATURE.fullmatch(signature) is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(signature), message)
    except InvalidSignature:
        return False
    return True
