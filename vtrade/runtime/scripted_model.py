"""A scripted stand-in for a model, served over real HTTP: for tests, demos and notebooks in CI.

:class:`ScriptedModelServer` is **not a model**. It is a ``ThreadingHTTPServer`` on 127.0.0.1 (a
free port) that speaks the OpenAI chat-completions API (``POST /v1/chat/completions``, not
streamed; ``GET /v1/models``) and answers each request with what a *script* returns: a
function of the request body (messages, tools, response format) giving text, tool calls, or
both (:class:`Scripted`). The copilot talks to it through the real ``openai`` client exactly
as it talks to OpenAI or Ollama, so a test exercises the whole path — schemas, HTTP, parsing,
the loop — with a "model" whose every move is known. A script can play a compromised model
(obey an injection it finds in a tool result, claim "confirmed", call a tool that does not
exist) to prove none of that can trade.

Every request it receives is kept, exactly as received (:attr:`ScriptedModelServer.received`:
request line, headers and body bytes) and parsed (:attr:`ScriptedModelServer.requests`), so a
test can check what reached "the model", e.g. that no key's bytes ever did.

>>> with ScriptedModelServer(lambda body: say("hello")) as server:
...     from openai import OpenAI
...     client = OpenAI(base_url=server.base_url, api_key="test")
...     client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}]
...                                    ).choices[0].message.content
'hello'
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Script",
    "Scripted",
    "ScriptedCall",
    "ScriptedModelServer",
    "call",
    "route",
    "say",
    "tool_outputs",
    "user_text",
]


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """A tool call the script makes: ``arguments`` is sent verbatim (malformed JSON included)."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted reply: text, tool calls, or both."""

    text: str | None = None
    calls: tuple[ScriptedCall, ...] = ()


Script = Callable[[Mapping[str, Any]], Scripted]


def say(text: str) -> Scripted:
    """A plain text answer."""
    return Scripted(text=text)


def call(name: str, arguments: Mapping[str, Any] | str | None = None, *more: tuple[str, Mapping[str, Any]]) -> Scripted:
    """Native tool call(s): ``call("quote", {"symbol": "AAPL"})``; a string is sent as is."""
    def one(n: str, a: Mapping[str, Any] | str | None) -> ScriptedCall:
        return ScriptedCall(n, a if isinstance(a, str) else json.dumps(dict(a or {})))
    return Scripted(calls=(one(name, arguments), *(one(n, a) for n, a in more)))


def route(tool: str, arguments: Mapping[str, Any] | None = None, answer: str = "") -> Scripted:
    """A JSON-routing reply (``{"tool", "arguments", "answer"}`` as the text)."""
    return Scripted(text=json.dumps({"tool": tool, "arguments": dict(arguments or {}), "answer": answer}))


def user_text(body: Mapping[str, Any]) -> str:
    """The content of the request's last user message (a script's idea of "the question")."""
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user" and not str(m.get("content", "")).startswith("Result of the tool"):
            return str(m.get("content", ""))
    return ""


def tool_outputs(body: Mapping[str, Any]) -> list[str]:
    """Every tool result in the request, oldest first: native ``tool`` messages and the
    JSON-routing mode's "Result of the tool ..." messages."""
    out = []
    for m in body.get("messages", []):
        content = str(m.get("content") or "")
        if m.get("role") == "tool" or (m.get("role") == "user" and content.startswith("Result of the tool")):
            out.append(content)
    return out


class ScriptedModelServer:
    """A scripted stand-in for a model, for tests (see the module notes). ``script`` gets each
    chat request's body and returns a :class:`Scripted`; ``model`` is the name it reports."""

    def __init__(self, script: Script, *, model: str = "scripted-model") -> None:
        self.script = script
        self.model = model
        self.received: list[bytes] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ScriptedModelServer:
        if self._server is not None:
            return self
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .received instead
                pass

            def do_GET(self) -> None:
                outer._keep(self, b"")
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._send(200, {"object": "list", "data": [{"id": outer.model, "object": "model",
                                                                  "owned_by": "vtrade-scripted"}]})  # fmt: skip
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                outer._keep(self, body)
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                try:
                    parsed = json.loads(body)
                    if not isinstance(parsed, dict):
                        raise ValueError("the body is not a JSON object")
                except ValueError as exc:
                    self._send(400, {"error": {"message": f"bad request body: {exc}", "type": "invalid_request"}})
                    return
                with outer._lock:
                    outer.requests.append(parsed)
                try:
                    answer = outer.script(parsed)
                except Exception as exc:  # the script is test code: report its failure as the server would
                    self._send(500, {"error": {"message": f"script failed: {exc!r}", "type": "server_error"}})
                    return
                self._send(200, outer._completion(answer))

            def _send(self, status: int, payload: Mapping[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test): nobody to tell

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll: stop() waits for the serving loop to notice, and tests start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="scripted-model", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what ``OPENAI_BASE_URL`` is set to."""
        if self._server is None:
            raise RuntimeError("the scripted model server is not running: start() it first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # ------------------------------------------------------------------ internals
    def _keep(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        head = f"{handler.requestline}\r\n{handler.headers}".encode("latin-1", "replace")
        with self._lock:
            self.received.append(head + b"\r\n" + body)

    def _completion(self, answer: Scripted) -> dict[str, Any]:
        n = next(self._ids)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if answer.calls:
            message["tool_calls"] = [{"id": f"call_{n}_{i}", "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for i, c in enumerate(answer.calls)]  # fmt: skip
        return {
            "id": f"chatcmpl-scripted-{n}", "object": "chat.completion", "created": 0, "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if answer.calls else "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }  # fmt: skip

    def bodies(self) -> Iterable[bytes]:
        """Everything received, as bytes (to search for what must never reach a model)."""
        with self._lock:
            return list(self.received)
