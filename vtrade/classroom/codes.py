"""Join codes: easy to type, hard to guess, compared in constant time.

A join code is 15 characters of Crockford's base32 (digits and letters without I, L, O and U,
so nothing reads as another character) in three groups of five: 75 bits of randomness,
``2**75`` (about 3.8e22) codes. At the join endpoint's rate limit no one guesses one.

Reading is forgiving where it cannot be ambiguous: case, blanks and hyphens do not matter,
and ``I``/``L`` read as ``1``, ``O`` as ``0`` (Crockford's decoding rules).

The domain never makes randomness (DESIGN.md §2): :func:`join_code` turns bytes the caller
drew into a code, so a test or a replay can pass fixed bytes. :func:`new_join_code` is the one
impure helper of this package: the runtime calls it (``secrets.token_bytes``) and puts the
code in the ``CreateClass`` command, so the code is on the log and a replay finds the same.

>>> code = join_code(bytes(range(10)))
>>> code
'000G4-0R40M-30E20'
>>> normalize_code(" 000g4 0r4om 30e2o ")   # lower case, blanks, O for 0
'000G40R40M30E20'
>>> codes_match("000g4-0r40m-30e20", code), codes_match("000G4-0R40M-30E21", code)
(True, False)
"""

from __future__ import annotations

import hmac
import secrets

from vtrade.classroom.errors import ClassroomError

__all__ = ["CODE_BITS", "CODE_LENGTH", "codes_match", "join_code", "new_join_code", "normalize_code"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 15  # characters, 5 bits each
CODE_BITS = 5 * CODE_LENGTH  # 75 bits >= the 64 the issue asks for
GROUP = 5
_ENTROPY_BYTES = (CODE_BITS + 7) // 8  # 10 bytes; the 5 spare bits are dropped
_READ_AS = {"I": "1", "L": "1", "O": "0"}
_EXAMPLE = "7KQ2M-XW9RT-C4HFD"


def join_code(entropy: bytes) -> str:
    """The grouped join code made of the first 75 bits of ``entropy`` (at least 10 bytes,
    drawn by the caller from a cryptographic source: :func:`new_join_code`)."""
    if not isinstance(entropy, bytes) or len(entropy) < _ENTROPY_BYTES:
        raise ValueError(f"a join code needs at least {_ENTROPY_BYTES} random bytes")
    n = int.from_bytes(entropy[:_ENTROPY_BYTES], "big") >> (8 * _ENTROPY_BYTES - CODE_BITS)
    chars = [ALPHABET[(n >> (5 * (CODE_LENGTH - 1 - i))) & 31] for i in range(CODE_LENGTH)]
    return "-".join("".join(chars[i : i + GROUP]) for i in range(0, CODE_LENGTH, GROUP))


def new_join_code() -> str:
    """A fresh join code from the operating system's CSPRNG. The one impure function of
    :mod:`vtrade.classroom`: the runtime calls it, never the fold."""
    return join_code(secrets.token_bytes(_ENTROPY_BYTES))


def normalize_code(text: object) -> str:
    """``text`` as the 15 bare characters of a join code, or a :class:`ClassroomError`
    (``wrong_code``) saying what a code looks like. Case, blanks and hyphens are ignored;
    ``I``/``L`` read as ``1`` and ``O`` as ``0``."""
    if not isinstance(text, str) or len(text) > 64:
        raise ClassroomError("wrong_code", f"A join code looks like {_EXAMPLE}")
    bare = "".join(_READ_AS.get(c, c) for c in text.upper() if c not in " -\t")
    if len(bare) != CODE_LENGTH or any(c not in ALPHABET for c in bare):
        raise ClassroomError(
            "wrong_code", f"A join code is {CODE_LENGTH} letters and digits, like {_EXAMPLE}; check it and try again"
        )
    return bare


def codes_match(given: object, expected: str) -> bool:
    """Whether ``given`` (as a student typed it) is ``expected``. Never raises; the comparison
    takes the same time however many characters are right, so timing tells a guesser nothing."""
    try:
        a = normalize_code(given)
    except ClassroomError:
        return False
    return hmac.compare_digest(a.encode("ascii"), normalize_code(expected).encode("ascii"))
