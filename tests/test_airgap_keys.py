"""The user's key, never in the process that talks to the model (issue 14, item 2).

The key store keeps one Ed25519 key per account in files only its owner can read; the signer
subprocess is the only process that makes, reads or uses a private key; the parent learns the
public key and signatures, nothing else. The last test looks for the private key's bytes (raw,
hex, base64, PEM, DER) everywhere the parent can see them: its objects, its logs, the market's
bus, journal and checkpoint.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import vtrade.runtime.keystore as keystore_module
from vtrade.copilot.intent import OrderIntent
from vtrade.copilot.signing import verify
from vtrade.runtime.bus import MemoryBus
from vtrade.runtime.keystore import KeyStore, KeyStoreError, default_key_dir, public_key
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.signer import SignerError, sign_in_subprocess

ROOT = Path(__file__).resolve().parents[1]
CONFIG = LiveConfig(symbols=("AAPL", "XOM"), speed=0, bots=False, burn_in=20_000)
LATER = time.time_ns() + 3 * 3600 * 10**9  # the intents' expiry: hours after the tests run


def _intent(account: str = "ann", *, expires_ns: int | None = None, nonce: str = "ab" * 16) -> OrderIntent:
    return OrderIntent.make(proposal_id="p-1", account=account, symbol="AAPL", side="buy", quantity=1,
                            order_type="limit", limit_price="100", tif="day", nonce=nonce,
                            expires_ns=expires_ns or LATER)  # fmt: skip


def _signer(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "vtrade.runtime.signer", *args], input=stdin,
                          capture_output=True, env=env, timeout=60, check=False)  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------- the key store
def test_a_key_is_made_on_first_use_in_a_private_dir_with_the_public_half_beside_it(tmp_path: Path) -> None:
    keys = tmp_path / "deep" / "keys"
    pub = public_key("c1:ann", keys)  # made by the signer subprocess
    store = KeyStore(keys)
    assert (store.private_path("c1:ann").name, store.public_path("c1:ann").name) == ("c1%3Aann.pem", "c1%3Aann.pub")
    assert _mode(keys) == 0o700 and _mode(store.private_path("c1:ann")) == 0o600
    assert store.public_path("c1:ann").read_text().strip() == pub and len(pub) == 64
    assert public_key("c1:ann", keys) == pub  # the same key every time: never replaced
    assert store.private_path("c1:ann").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in keys.iterdir()) == ["c1%3Aann.pem", "c1%3Aann.pub"]  # no temporary left


def test_reading_the_public_key_never_loads_the_private_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(tmp_path / "keys")
    pub = store.public_key("ann")  # (a subprocess made it)

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("the private key was loaded in the parent process")

    monkeypatch.setattr(keystore_module, "load_pem_private_key", refuse)
    monkeypatch.setattr(KeyStore, "private_key", refuse)
    monkeypatch.setattr(KeyStore, "create", refuse)
    assert KeyStore(tmp_path / "keys").public_key("ann") == pub
    other = KeyStore(tmp_path / "keys").public_key("bob")  # a new account: made in the subprocess, not here
    assert other != pub
    sig = sign_in_subprocess(_intent("bob"), "bob", tmp_path / "keys")
    assert verify(other, sig, _intent("bob").canonical())


def test_the_default_key_dir_is_the_environment_s_or_under_the_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTRADE_KEY_DIR", "/somewhere/keys")
    assert default_key_dir() == Path("/somewhere/keys")
    monkeypatch.delenv("VTRADE_KEY_DIR")
    assert default_key_dir() == Path.home() / ".config" / "vtrade" / "keys"


def test_a_key_dir_or_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pub = public_key("ann", keys)
    keys.chmod(0o755)
    with pytest.raises(KeyStoreError, match=r"open to other users \(mode 0o755\): chmod 700"):
        KeyStore(keys).public_key("ann")
    with pytest.raises(SignerError, match="open to other users") as failed:
        sign_in_subprocess(_intent(), "ann", keys)
    assert failed.value.status == 1
    keys.chmod(0o700)
    KeyStore(keys).private_path("ann").chmod(0o644)
    with pytest.raises(SignerError, match=r"key file .* is open to other users") as failed:
        sign_in_subprocess(_intent(), "ann", keys)
    KeyStore(keys).private_path("ann").chmod(0o600)
    assert verify(pub, sign_in_subprocess(_intent(), "ann", keys), _intent().canonical())


@pytest.mark.parametrize("bad", ["", "../ann", "a/b", ".hidden", "a b", "ann\n", 7, None, "x" * 200])
def test_an_account_that_cannot_be_a_file_name_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(KeyStoreError, match="is not an account name"):
        KeyStore(tmp_path).public_key(bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_key_or_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    public_key("ann", keys)
    with pytest.raises(SignerError, match="account 'bob' has no key") as failed:
        sign_in_subprocess(_intent("bob"), "bob", keys)
    assert failed.value.status == 1
    KeyStore(keys).public_path("ann").write_text("not hex\n")
    with pytest.raises(KeyStoreError, match="does not hold an Ed25519 public key"):
        KeyStore(keys).public_key("ann")
    KeyStore(keys).private_path("ann").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SignerError, match="does not hold an unencrypted PEM private key"):
        sign_in_subprocess(_intent(), "ann", keys)


# ---------------------------------------------------------------------------- the signer
def test_the_signer_signs_the_canonical_bytes_whatever_order_and_spacing_it_is_sent(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pub = public_key("ann", keys)
    i = _intent()
    shuffled = json.dumps(dict(reversed(json.loads(i.canonical()).items())), indent=3).encode()
    out = _signer(["--account", "ann", "--key-dir", str(keys)], shuffled)
    assert out.returncode == 0 and out.stderr == b""
    sig = out.stdout.decode().strip()
    assert verify(pub, sig, i.canonical())  # over the canonical bytes...
    assert sig == sign_in_subprocess(i, "ann", keys)  # ...exactly as the wrapper gets it (Ed25519 is deterministic)


@pytest.mark.parametrize(("stdin", "says"), [
    (b"", "not a valid intent"),
    (b"{not json", "not a valid intent"),
    (b'{"account": "ann"}', "missing"),
    (_intent().canonical().replace(b'"quantity":"1"', b'"quantity":"NaN"'), "quantity"),
    (_intent().canonical().replace(b'"AAPL"', b'"aapl"'), "symbol"),
    (_intent().canonical().replace(b'"quantity":"1"', b'"quantity":"-1"'), "quantity"),
    (_intent().canonical().replace(b'"limit_price":"100"', b'"limit_price":"0"'), "limit_price"),
    (_intent().canonical()[:-1] + b',"extra":"1"}', "unexpected extra"),
    (_intent().canonical().replace(b"vtrade.intent/1", b"vtrade.intent/2"), "unknown intent version"),
    (_intent("bob").canonical(), "the intent is for account 'bob', not 'ann'"),
    (_intent(expires_ns=1).canonical(), "has expired"),
    (b"{" + b" " * 70_000 + b"}", "over 65536 bytes"),
])  # fmt: skip
def test_the_signer_refuses_anything_invalid_with_status_2_and_one_line(
    tmp_path: Path, stdin: bytes, says: str
) -> None:
    keys = tmp_path / "keys"
    public_key("ann", keys)
    out = _signer(["--account", "ann", "--key-dir", str(keys)], stdin)
    assert out.returncode == 2 and out.stdout == b""
    err = out.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1 and says in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [[], ["--account"], ["--account", "../x"], ["--account", "ann", "--bogus"]])
def test_bad_arguments_are_status_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    out = _signer([*args, "--key-dir", str(tmp_path / "keys")] if args else args)
    assert out.returncode == 2 and out.stderr.decode().count("\n") == 1 and out.stdout == b""


def test_the_wrapper_refuses_what_is_not_an_intent_and_reports_the_signer_s_refusal(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        sign_in_subprocess(_intent().canonical(), "ann", tmp_path)  # type: ignore[arg-type]
    public_key("ann", tmp_path / "keys")
    with pytest.raises(SignerError, match="for account 'ann', not 'bob'") as refused:
        sign_in_subprocess(_intent("ann"), "bob", tmp_path / "keys")
    assert refused.value.status == 2


# ---------------------------------------------------------------------------- no key bytes anywhere
_NEEDLES = textwrap.dedent("""
    import base64, json, sys
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
    from vtrade.runtime.keystore import KeyStore
    k = KeyStore(sys.argv[1]).private_key(sys.argv[2])
    raw = k.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    der = k.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    pem = k.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    forms = [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("="),
             base64.urlsafe_b64encode(raw).decode().rstrip("="), base64.b64encode(der).decode(), pem, der.hex()]
    print(json.dumps({"raw": raw.hex(), "der": der.hex(), "text": forms}))
""")


def _needles(keys: Path, account: str) -> tuple[list[bytes], list[str]]:
    """The private key in every form, computed in a subprocess (so the parent's only copies are
    the ones returned here)."""
    out = subprocess.run([sys.executable, "-c", _NEEDLES, str(keys), account], capture_output=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)  # fmt: skip
    got = json.loads(out.stdout)
    del out
    texts: list[str] = got["text"]
    blobs = [bytes.fromhex(got["raw"]), bytes.fromhex(got["der"])] + [t.encode() for t in texts]
    return blobs, texts


def _leaks(haystack: object, blobs: list[bytes], texts: list[str]) -> bool:
    if isinstance(haystack, bytes | bytearray | memoryview):
        data = bytes(haystack)
        return any(b in data for b in blobs)
    if isinstance(haystack, str):
        return any(t in haystack for t in texts)
    return False


def _objects_holding(blobs: list[bytes], texts: list[str], mine: set[int]) -> list[str]:
    """Every str/bytes object the parent's live objects refer to that holds a needle (except
    the needles themselves)."""
    gc.collect()
    found: list[str] = []
    seen: set[int] = set(mine)
    for obj in gc.get_objects():
        for ref in gc.get_referents(obj):
            if id(ref) in seen or not isinstance(ref, str | bytes | bytearray):
                continue
            seen.add(id(ref))
            if len(ref) >= 32 and _leaks(ref, blobs, texts):
                found.append(f"{type(obj).__name__} -> {type(ref).__name__}[{len(ref)}]")
    return found


def test_the_private_key_never_reaches_the_parent_its_logs_or_the_market(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = tmp_path / "keys"
    m = LiveMarket(CONFIG, data_dir=tmp_path / "data")
    m.open_account("ann", cash=100_000)
    pub = public_key("ann", keys)  # made in the subprocess
    m.register_key("ann", pub)
    m.advance(2)
    sigs = []
    for n in range(2):
        i = _intent(nonce=f"{n:032x}")
        sigs.append(sign_in_subprocess(i, "ann", keys))
        assert m.submit_signed("ann", i.canonical().decode(), sigs[-1], pub).ok
    with pytest.raises(SignerError) as refused:
        sign_in_subprocess(_intent("ann", expires_ns=1), "ann", keys)
    m.checkpoint()
    bus = m._log.bus
    assert isinstance(bus, MemoryBus)
    records = [r.value for t in bus.topics() for p in range(bus.partitions(t)) for r in bus.read(t, p, 0, 100_000)]
    journal = m._durable.journal.read() if m._durable is not None else None
    assert journal is not None and len(journal) > 0
    ckpt = m._durable.latest() if m._durable is not None else None
    assert ckpt is not None
    m.close()
    files = [p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()]
    blobs, texts = _needles(keys, "ann")
    mine = {id(x) for x in (*blobs, *texts)} | {id(blobs), id(texts)}

    places: dict[str, list[object]] = {
        "bus records": list(records),
        "journal payloads": [bytes(v) for v in journal["payload"]] + [str(journal.to_dict())],
        "checkpoint": [ckpt.state],
        "data dir files": files,
        "logs": [caplog.text, *[r.getMessage() for r in caplog.records]],
        "signer messages": [str(refused.value)],
        "signatures and public key": [*sigs, pub],
    }
    for where, items in places.items():
        assert not any(_leaks(x, blobs, texts) for x in items), f"a private key form leaked into the {where}"
    assert _objects_holding(blobs, texts, mine) == []
    # The scan finds a copy when there is one (the needles themselves are excluded by identity).
    planted = ["".join(list(texts[0]))]
    assert _objects_holding(blobs, texts, mine) == ["list -> str[64]"]
    del planted
