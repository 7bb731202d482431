"""The copilot's model: any OpenAI-compatible chat endpoint, through the real ``openai`` client.

OpenAI itself, Ollama, a llama.cpp server, vLLM... all speak the same chat-completions API. The
endpoint and key come **only from environment variables** (a key typed into a notebook cell or
a config file ends up in a repository sooner or later):

- ``OPENAI_API_KEY`` — the key (never logged, never shown, never sent anywhere but the endpoint);
- ``OPENAI_BASE_URL`` — the endpoint (default: OpenAI's), e.g. ``http://127.0.0.1:11434/v1``
  for Ollama or ``http://127.0.0.1:8080/v1`` for llama.cpp's server;
- ``VTRADE_COPILOT_MODEL`` — the model name (or pass ``model=``; default :data:`DEFAULT_MODEL`).

Without a key, :class:`ModelClient` raises :class:`CopilotUnavailable` saying how to set one,
unless the endpoint is on this machine (local servers accept any key). A model that cannot be
reached, times out or refuses the request raises :class:`~vtrade.copilot.agent.ModelError` with
one readable sentence; the copilot shows it instead of a traceback.

>>> ModelClient(base_url="http://127.0.0.1:8080/v1", model="smollm2", environ={}).name
'smollm2'
>>> ModelClient(environ={})
Traceback (most recent call last):
...
vtrade.runtime.model_client.CopilotUnavailable: The copilot needs a model: set OPENAI_API_KEY ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import openai

from vtrade.copilot.agent import ChatRequest, ModelError, ModelReply, ToolCall
from vtrade.core.errors import VtradeError

__all__ = ["DEFAULT_MODEL", "ENV_BASE_URL", "ENV_KEY", "ENV_MODEL", "HOW_TO", "CopilotUnavailable", "ModelClient",
           "is_local"]  # fmt: skip

ENV_KEY, ENV_BASE_URL, ENV_MODEL = "OPENAI_API_KEY", "OPENAI_BASE_URL", "VTRADE_COPILOT_MODEL"
DEFAULT_MODEL = "gpt-4o-mini"
HOW_TO = (
    f"The copilot needs a model: set {ENV_KEY} in the environment before starting vtrade (for OpenAI), and "
    f"{ENV_BASE_URL} for another OpenAI-compatible server (Ollama: http://127.0.0.1:11434/v1, llama.cpp: "
    f"http://127.0.0.1:8080/v1). Local servers accept any key: with {ENV_BASE_URL} on 127.0.0.1 or "
    f"localhost no key is needed. Choose the model with {ENV_MODEL}."
)
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class CopilotUnavailable(VtradeError):
    """No model to talk to (no key, no local endpoint): the message says how to set one."""


def is_local(url: str) -> bool:
    """Whether ``url`` points at this machine (where servers take any key).

    >>> is_local("http://127.0.0.1:8080/v1"), is_local("https://api.openai.com/v1")
    (True, False)
    """
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in _LOCAL_HOSTS or host.startswith("127.")


class ModelClient:
    """A chat model over an OpenAI-compatible endpoint (the :class:`~vtrade.copilot.agent.ChatModel`
    the copilot's agent calls). ``environ`` (default ``os.environ``) is where the key, endpoint and
    model name are read; ``timeout`` is seconds per request; ``max_tokens`` and ``temperature``
    are sent when given."""

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_tokens: int | None = None,
        temperature: float | None = 0.2,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        base = (base_url or env.get(ENV_BASE_URL) or "").strip() or None
        key = env.get(ENV_KEY, "").strip()
        if not key:
            if base is None or not is_local(base):
                raise CopilotUnavailable(HOW_TO)
            key = "local"  # a local server takes any key; the client insists on one
        if not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._model = (model or env.get(ENV_MODEL) or DEFAULT_MODEL).strip()
        self._base = base
        self._timeout = float(timeout)
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._secret = key
        # One retry: a dead server should be reported in seconds, not after a backoff ladder.
        self._client = openai.OpenAI(api_key=key, base_url=base, timeout=self._timeout, max_retries=1)

    @property
    def name(self) -> str:
        """The model's name."""
        return self._model

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (no credentials in it)."""
        return str(self._client.base_url)

    def __repr__(self) -> str:  # never the key
        return f"ModelClient(model={self._model!r}, endpoint={self.endpoint!r})"

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def complete(self, request: ChatRequest) -> ModelReply:
        """Send ``request``; the reply, or :class:`ModelError` with a readable message."""
        kwargs: dict[str, Any] = {"model": self._model, "messages": [dict(m) for m in request.messages]}
        if request.tools:
            kwargs["tools"] = [dict(t) for t in request.tools]
            if request.tool_choice is not None:
                kwargs["tool_choice"] = request.tool_choice
            if request.parallel_tool_calls is not None:
                kwargs["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format is not None:
            kwargs["response_format"] = dict(request.response_format)
        if self._max_tokens is not None:
            kwargs["max_tokens"] = self._max_tokens
        if self._temperature is not None:
            kwargs["temperature"] = self._temperature
        where = self.endpoint
        try:
            resp = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise ModelError(f"The model at {where} did not answer within {self._timeout:g} s.") from None
        except openai.APIConnectionError:
            raise ModelError(f"Cannot reach the model at {where}: is the server running, and is {ENV_BASE_URL} "
                             "right?") from None  # fmt: skip
        except openai.AuthenticationError:
            raise ModelError(f"The model server at {where} refused the key in {ENV_KEY} (401).") from None
        except openai.NotFoundError:
            raise ModelError(f"The model server at {where} has no model {self._model!r} (404): set "
                             f"{ENV_MODEL} to one it serves.") from None  # fmt: skip
        except openai.APIStatusError as exc:
            detail = self._scrub(str(getattr(exc, "message", "") or ""))[:300]
            raise ModelError(f"The model server at {where} answered {exc.status_code}: {detail}") from None
        except openai.OpenAIError as exc:
            raise ModelError(f"The model request failed: {self._scrub(str(exc))[:300]}") from None
        if not getattr(resp, "choices", None):
            raise ModelError(f"The model server at {where} sent a reply without choices.")
        choice = resp.choices[0]
        msg = choice.message
        calls = []
        for c in msg.tool_calls or ():
            fn = getattr(c, "function", None)
            if fn is None:  # a non-function (custom) tool call: nothing here asked for one
                continue
            calls.append(ToolCall(str(c.id), str(fn.name), str(fn.arguments or "")))
        return ModelReply(msg.content, tuple(calls), choice.finish_reason)
