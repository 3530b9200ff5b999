"""Hostile and damaged GGUF files: refused with a reason before llama.cpp reads a byte,
and a model file deleted, cut short or replaced while it is in use stops the work with
that reason instead of crashing the app or blaming the document in flight."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localsearch import paths
from localsearch.core.embedding import LlamaVocab
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.models import manager
from localsearch.core.models.gguf_io import check_gguf_header, inspect_gguf
from localsearch.errors import ModelError

# -- a GGUF written byte by byte, so that every field can lie -------------------------


def _str(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _kv_string(key: bytes, value: bytes) -> bytes:
    return _str(key) + struct.pack("<I", 8) + _str(value)


def _kv_u32(key: bytes, value: int) -> bytes:
    return _str(key) + struct.pack("<I", 4) + struct.pack("<I", value)


def _tensor(name: bytes, dims: list[int], type_id: int = 0, offset: int = 0) -> bytes:
    head = _str(name) + struct.pack("<I", len(dims))
    return head + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", type_id, offset)


def _gguf(
    kvs: list[bytes] | None = None,
    tensors: list[bytes] | None = None,
    data: bytes = b"\0" * 128,
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    kv_count: int | None = None,
    tensor_count: int | None = None,
) -> bytes:
    kvs = (
        [_kv_string(b"general.architecture", b"bert"), _kv_u32(b"bert.block_count", 1)]
        if kvs is None
        else kvs
    )
    tensors = [_tensor(b"token_embd.weight", [8, 4])] if tensors is None else tensors
    header = magic + struct.pack(
        "<IQQ",
        version,
        len(tensors) if tensor_count is None else tensor_count,
        len(kvs) if kv_count is None else kv_count,
    )
    body = header + b"".join(kvs) + b"".join(tensors)
    body += b"\0" * (-len(body) % 32)
    return body + data


HOSTILE: dict[str, tuple[bytes, str]] = {
    "wrong magic": (_gguf(magic=b"GGML"), "not a GGUF file"),
    "a ZIP renamed": (b"PK\x03\x04" + b"\0" * 200, "not a GGUF file"),
    "version 1": (_gguf(version=1), "version 1"),
    "big-endian": (_gguf(version=3 << 24), "big-endian"),
    "tensor offset past the end": (
        _gguf(tensors=[_tensor(b"token_embd.weight", [8, 4], offset=1 << 40)]),
        "ends at byte",
    ),
    "tensor larger than the file": (
        _gguf(tensors=[_tensor(b"token_embd.weight", [4096, 4096])]),
        "ends at byte",
    ),
    "absurd key count": (_gguf(kv_count=(1 << 63) + 5), "keys and"),
    "absurd tensor count": (_gguf(tensor_count=1 << 62), "tensors needs"),
    "absurd array length": (
        _gguf(
            kvs=[
                _kv_string(b"general.architecture", b"bert"),
                _str(b"tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 1 << 60),
            ]
        ),
        "items",
    ),
    "absurd string-array length": (
        _gguf(
            kvs=[
                _kv_string(b"general.architecture", b"bert"),
                _str(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 61),
            ]
        ),
        "strings",
    ),
    "a 10 GB declared string": (
        _gguf(
            kvs=[
                _kv_string(b"general.architecture", b"bert"),
                _str(b"general.name") + struct.pack("<IQ", 8, 10_000_000_000) + b"x" * 64,
            ]
        ),
        "10,000,000,000 bytes",
    ),
    "a 10 GB key name": (_gguf(kvs=[struct.pack("<Q", 10_000_000_000) + b"general"]), "10,000,000,000 bytes"),
    "unsupported architecture": (
        _gguf(kvs=[_kv_string(b"general.architecture", b"evil-net")]),
        "does not support",
    ),
    "no architecture": (_gguf(kvs=[_kv_u32(b"bert.block_count", 1)]), "no general.architecture"),
    "five dimensions": (_gguf(tensors=[_tensor(b"token_embd.weight", [2, 2, 2, 2, 2])]), "dimensions"),
    "elements overflow": (
        _gguf(tensors=[_tensor(b"token_embd.weight", [1 << 40, 1 << 40])]),
        "elements",
    ),
    "unknown weight type": (
        _gguf(tensors=[_tensor(b"token_embd.weight", [8, 4], type_id=999)]),
        "weight type",
    ),
    "unknown value type": (
        _gguf(kvs=[_kv_string(b"general.architecture", b"bert"), _str(b"x.y") + struct.pack("<I", 77)]),
        "value type",
    ),
    "misaligned tensor": (_gguf(tensors=[_tensor(b"token_embd.weight", [8, 4], offset=3)]), "aligned"),
    "duplicate key": (
        _gguf(
            kvs=[_kv_string(b"general.architecture", b"bert"), _kv_string(b"general.architecture", b"bert")]
        ),
        "twice",
    ),
    "duplicate tensor": (
        _gguf(
            tensors=[_tensor(b"token_embd.weight", [8, 1]), _tensor(b"token_embd.weight", [8, 1], offset=32)]
        ),
        "twice",
    ),
    "header cut inside a key": (_gguf()[:40], "remain"),
    "alignment not a power of two": (
        _gguf(kvs=[_kv_string(b"general.architecture", b"bert"), _kv_u32(b"general.alignment", 24)]),
        "power of two",
    ),
}


def test_the_hand_written_base_file_is_valid(tmp_path: Path) -> None:
    """The hostile cases differ from a file the validator accepts by one lie each."""
    path = tmp_path / "ok.gguf"
    path.write_bytes(_gguf())
    header = check_gguf_header(path)
    assert (header.architecture, header.tensor_count, header.version) == ("bert", 1, 3)


@pytest.fixture
def llama_must_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    def refuse(*args: object) -> None:
        raise AssertionError("llama.cpp was handed a file the validator should have refused")

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", refuse)
    monkeypatch.setattr(llama_cpp, "llama_adapter_lora_init", refuse)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_gguf_is_refused_before_llama_cpp_reads_it(
    case: str, tmp_path: Path, llama_must_not_load: None
) -> None:
    content, reason = HOSTILE[case]
    path = tmp_path / "hostile.gguf"
    path.write_bytes(content)
    started = time.monotonic()
    with pytest.raises(ModelError, match=reason):
        check_gguf_header(path)
    with pytest.raises(ModelError, match=reason):
        LlamaVocab(path)  # the one door to llama_model_load_from_file
    with pytest.raises(ModelError):
        inspect_gguf(path)
    with pytest.raises(ModelError):
        manager.import_model(path)
    assert time.monotonic() - started < 5  # absurd counts are refused, not looped over
    assert not list(paths.models_dir().glob("*.gguf*"))  # nothing half-installed


def test_truncations_of_the_real_model_are_all_refused(
    default_model: Path, tmp_path: Path, llama_must_not_load: None
) -> None:
    data = default_model.read_bytes()
    header = check_gguf_header(default_model)
    cuts = [9, 24, 100, 5_000, header.data_offset - 1, header.data_offset + 10, len(data) // 2, len(data) - 1]
    for cut in cuts:
        path = tmp_path / f"cut-{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError, match=r"not a GGUF|damaged|truncated"):
            LlamaVocab(path)
        path.unlink()


def test_the_real_model_passes_quickly(default_model: Path) -> None:
    started = time.perf_counter()
    header = check_gguf_header(default_model)
    assert header.architecture == "bert" and header.tensor_count > 50
    assert time.perf_counter() - started < 1.0


def test_a_model_file_turned_hostile_gives_the_cli_a_clear_error(default_model: Path, tmp_path: Path) -> None:
    """A folder indexed with a model file that is then overwritten with a hostile one:
    each command says why in one line and exits; nothing crashes or hangs."""
    model = tmp_path / "mine.gguf"
    shutil.copyfile(default_model, model)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("some words about birds")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("LOCALSEARCH_TEST_EMBEDDER", None)
    config = Path(env["LOCALSEARCH_HOME"]) / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.toml").write_text(f'model = "{model}"\n')

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "localsearch", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert cli("index", str(docs)).returncode == 0
    assert "a.txt" in cli("search", "birds").stdout
    model.write_bytes(HOSTILE["a 10 GB declared string"][0])
    (docs / "b.txt").write_text("more words about fish")
    for command in (["index", str(docs)], ["search", "birds"], ["update", str(docs / "b.txt")]):
        result = cli(*command)
        assert result.returncode == 1, result.stderr
        assert "10,000,000,000 bytes" in result.stderr
        assert "Traceback" not in result.stderr
    # The index built before is as it was: with the model back, the same answer.
    shutil.copyfile(default_model, model)
    assert "a.txt" in cli("search", "birds").stdout


# -- the model file changing under a running engine -----------------------------------


@pytest.fixture
def model_copy(default_model: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models" / default_model.name
    copy.parent.mkdir()
    shutil.copyfile(default_model, copy)
    return copy


def _kill_child(engine: ProcessEmbedder) -> None:
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGKILL)


@pytest.mark.parametrize("change", ["deleted", "truncated", "replaced"])
def test_model_file_changed_under_the_engine_stops_with_the_reason(change: str, model_copy: Path) -> None:
    engine = ProcessEmbedder(model_copy, threads=1, max_tokens=64)
    try:
        tokens = engine.tokenize("a sentence about the sea")
        before = engine.embed_tokens([tokens])
        if change == "truncated":
            with open(model_copy, "r+b") as handle:  # in place: the running child's mapping shrinks
                handle.truncate(model_copy.stat().st_size // 3)
            # The child dies on its mapping (SIGBUS) at the next input; that death must be
            # put down to the model file, not to the input in flight.
        else:
            if change == "deleted":
                model_copy.unlink()
            else:
                other = model_copy.with_name("other.gguf")
                other.write_bytes(model_copy.read_bytes())
                os.replace(other, model_copy)
            # The running child keeps the file it opened and goes on as it was...
            assert (engine.embed_tokens([tokens]) == before).all()
            # ...until it has to start again (a crash, a change of wait policy).
            _kill_child(engine)
        with pytest.raises(
            ModelError, match=rf"{'deleted' if change == 'deleted' else 'changed or replaced'}"
        ):
            engine.embed_tokens([tokens])
        # And a restart attempt says the same, however often it is tried.
        with pytest.raises(ModelError, match=r"deleted|changed or replaced"):
            engine.embed_tokens([tokens])
    finally:
        engine.close()
    assert before.shape[0] == 1


def test_query_engine_survives_its_model_cut_short_in_place(model_copy: Path) -> None:
    """The window's query engine runs in the window's own process: it reads the model
    into memory, so a file truncated under it cannot kill the process (SIGBUS)."""
    code = (
        "import sys\n"
        "from localsearch.core.embedding import LlamaEmbedder\n"
        f"e = LlamaEmbedder({str(model_copy)!r}, threads=1, max_tokens=64, mmap=False)\n"
        "t = e.tokenize('a question about ships')\n"
        "a = e.embed_tokens([t])\n"
        f"open({str(model_copy)!r}, 'r+b').truncate(1000)\n"
        "b = e.embed_tokens([t])\n"
        "print(float((a * b).sum()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip()) > 0.999
