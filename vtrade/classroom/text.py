"""Free text people type into a class: display names, class names, announcements, trade notes.

Text is checked for length and for characters that have no business in a name (control
characters, bidirectional overrides that make a name read backwards on screen) and stored
as typed, trimmed and NFC-normalised. It is never HTML-escaped here: ``<b>Ada</b>`` is a
legal, if odd, display name, and escaping is each view's job (a CSV export neutralises a
leading ``=`` instead, a web page escapes ``<``). Escaping in the domain would double-escape
in every view that also escapes and hide the real text from the notebook API.

>>> clean_text("  Ada  Lovelace ", "display name", 40)
'Ada Lovelace'
>>> name_key("ADA lovelace") == name_key(" ada   Lovelace")
True
>>> clean_text("Ada\\x00", "display name", 40)
Traceback (most recent call last):
...
vtrade.classroom.errors.ClassroomError: The display name contains a control character (U+0000); use plain text
"""

from __future__ import annotations

import unicodedata

from vtrade.classroom.errors import ClassroomError

#: Characters that reorder or hide text on screen: a name could show as another name.
_INVISIBLE_FORMAT = frozenset(
    "\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2060\ufeff"
)

DISPLAY_NAME_MAX = 40
CLASS_NAME_MAX = 80
ANNOUNCEMENT_MAX = 1000
NOTE_MAX = 1000


def clean_text(text: object, what: str, max_len: int, *, multiline: bool = False) -> str:
    """``text`` trimmed, NFC-normalised and (unless ``multiline``) with runs of blanks made
    one space; a :class:`ClassroomError` (``bad_text``) if it is not a string, is empty, is
    longer than ``max_len`` characters or holds control characters (a tab or line break
    inside a one-line field included) or invisible formatting characters. ``multiline``
    allows line breaks (an announcement may have paragraphs)."""
    if not isinstance(text, str):
        raise ClassroomError("bad_text", f"The {what} must be text, got {type(text).__name__}")
    # Surrounding blanks (a pasted trailing newline) are trimmed before the check, not refused.
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").strip()
    for ch in text:
        if multiline and ch == "\n":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Zl", "Zp"):
            raise ClassroomError(
                "bad_text", f"The {what} contains a control character (U+{ord(ch):04X}); use plain text"
            )
        if ch in _INVISIBLE_FORMAT or cat == "Co":
            raise ClassroomError(
                "bad_text", f"The {what} contains an invisible formatting character (U+{ord(ch):04X}); use plain text"
            )
    # Runs of blanks become one space: "Ada  L" and "Ada L" read the same on every screen.
    lines = text.split("\n") if multiline else [text]
    text = "\n".join(" ".join(line.split()) for line in lines)
    if not text:
        raise ClassroomError("bad_text", f"The {what} must not be empty")
    if len(text) > max_len:
        raise ClassroomError("bad_text", f"The {what} is {len(text)} characters long; at most {max_len} are allowed")
    return text


def name_key(name: str) -> str:
    """What two display names must differ in: case, width and spacing do not count, so
    ``"Ada"``, ``" ADA "`` and ``"Ａｄａ"`` are the same name in a roster."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())
