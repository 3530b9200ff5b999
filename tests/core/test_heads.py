"""Dense output heads (stella_en_1.5B_v5's Matryoshka sizes) on the real default model.

No stella weights exist offline, so the mechanism is shown with all-MiniLM-L6-v2 and a
synthetic head written here, as sentence-transformers writes one (config.json and
model.safetensors) and as torch.save writes pytorch_model.bin (a zip holding a protocol-2
pickle and raw storages), built from pickle opcodes so that no test imports torch.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from safetensors.numpy import save_file

from localsearch import paths
from localsearch import settings as settings_module
from localsearch.cli import main
from localsearch.core.embedding import LlamaEmbedder, normalize_rows
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.heads import load_head, read_torch_zip
from localsearch.core.models import catalog as catalog_module
from localsearch.core.models import manager
from localsearch.core.models.catalog import Catalog, load_catalog
from localsearch.core.service import LocalSearch
from localsearch.errors import ModelError
from tests.core.choose import use_model
from tests.core.test_models_download import FakeHub, _entry, hub  # noqa: F401  (hub: the fixture)

HIDDEN = 384  # all-MiniLM-L6-v2
OUT = 48
TEXTS = [
    "The cat sat on the mat.",
    "Output heads project the pooled vector to another size.",
    "Quarterly revenue grew in every region but one.",
]


def synthetic(out: int = OUT, inp: int = HIDDEN, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.2, (out, inp)).astype(np.float32), rng.normal(0, 0.5, out).astype(np.float32)


def config(weight: np.ndarray, **overrides: object) -> str:
    values: dict[str, object] = {
        "in_features": weight.shape[1],
        "out_features": weight.shape[0],
        "bias": True,
        "activation_function": "torch.nn.modules.linear.Identity",
    }
    values.update(overrides)
    return json.dumps(values)


def write_safetensors_head(folder: Path, weight: np.ndarray, bias: np.ndarray, **cfg: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config(weight, **cfg))
    save_file({"linear.weight": weight, "linear.bias": bias}, str(folder / "model.safetensors"))
    return folder


# -- torch.save's zip layout, written by hand ---------------------------------------


def _text(value: str) -> bytes:
    data = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def _tuple(items: Iterable[bytes]) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def torch_pickle(tensors: dict[str, tuple[str, int, tuple[int, ...], tuple[int, ...]]]) -> bytes:
    """A state dict pickle as torch.save writes it: name -> (storage key, element count, size,
    stride), each tensor rebuilt by torch._utils._rebuild_tensor_v2 from a persistent storage."""
    out = pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK
    for name, (key, numel, size, stride) in tensors.items():
        kind = pickle.GLOBAL + b"torch\nFloatStorage\n"
        storage = _tuple([_text("storage"), kind, _text(key), _text("cpu"), _int(numel)])
        hooks = pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE
        args = storage + pickle.BINPERSID + _int(0) + _tuple(map(_int, size)) + _tuple(map(_int, stride))
        out += _text(name) + pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n"
        out += pickle.MARK + args + pickle.NEWFALSE + hooks + pickle.TUPLE + pickle.REDUCE
    return out + pickle.SETITEMS + pickle.STOP


def write_torch_zip(path: Path, data_pkl: bytes, storages: dict[str, bytes], archive: str = "head") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{archive}/data.pkl", data_pkl)
        zf.writestr(f"{archive}/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"{archive}/data/{key}", raw)
        zf.writestr(f"{archive}/version", "3\n")
    return path


def write_bin_head(folder: Path, weight: np.ndarray, bias: np.ndarray, *, transposed: bool = False) -> Path:
    """pytorch_model.bin with config.json; `transposed` stores the weight column-major (a
    strided view of its storage), as a transposed tensor would be saved."""
    out, inp = weight.shape
    stored = weight.T if transposed else weight
    stride = (1, out) if transposed else (inp, 1)
    data = torch_pickle(
        {
            "linear.weight": ("0", weight.size, (out, inp), stride),
            "linear.bias": ("1", bias.size, (out,), (1,)),
        }
    )
    raw = {"0": np.ascontiguousarray(stored, dtype="<f4").tobytes(), "1": bias.astype("<f4").tobytes()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config(weight))
    write_torch_zip(folder / "pytorch_model.bin", data, raw)
    return folder


# -- reading heads -----------------------------------------------------------------


def test_both_formats_read_the_same_head(tmp_path: Path) -> None:
    weight, bias = synthetic()
    st = load_head(write_safetensors_head(tmp_path / "st", weight, bias), in_features=HIDDEN)
    pt = load_head(write_bin_head(tmp_path / "pt", weight, bias), in_features=HIDDEN)
    strided = load_head(write_bin_head(tmp_path / "t", weight, bias, transposed=True), in_features=HIDDEN)
    for head in (st, pt, strided):
        assert (head.in_features, head.out_features) == (HIDDEN, OUT)
        np.testing.assert_array_equal(head.weight, weight)
        assert head.bias is not None
        np.testing.assert_array_equal(head.bias, bias)
    x = np.random.default_rng(0).normal(size=(2, HIDDEN)).astype(np.float32)
    np.testing.assert_allclose(st.apply(x), x @ weight.T + bias, rtol=1e-5, atol=1e-5)
    # A weights file alone (no config) is read too.
    assert load_head(tmp_path / "pt" / "pytorch_model.bin").out_features == OUT


def test_half_precision_safetensors_are_widened(tmp_path: Path) -> None:
    weight, _ = synthetic()
    save_file({"linear.weight": weight.astype(np.float16)}, str(tmp_path / "h.safetensors"))
    head = load_head(tmp_path / "h.safetensors")
    assert head.weight.dtype == np.float32 and head.bias is None
    np.testing.assert_allclose(head.weight, weight, atol=1e-3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda w, b, d: write_safetensors_head(d, w[:, :100], b), "takes 100-dimension vectors; the model"),
        (lambda w, b, d: write_safetensors_head(d, w, b[:10]), "linear.bias has shape [10]"),
        (lambda w, b, d: write_safetensors_head(d, w, b, out_features=99), "config says out_features 99"),
        (lambda w, b, d: write_safetensors_head(d, w, b, activation_function="nn.Tanh"), "only Identity"),
        (lambda w, b, d: write_safetensors_head(d, w * np.nan, b), "NaN"),
    ],
)
def test_a_head_that_does_not_fit_is_refused(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    weight, bias = synthetic()
    folder = make(weight, bias, tmp_path / "bad")
    with pytest.raises(ModelError, match="not a usable output head") as info:
        load_head(folder, in_features=HIDDEN)
    assert message in str(info.value)


def test_truncated_files_are_refused(tmp_path: Path) -> None:
    weight, bias = synthetic()
    st = write_safetensors_head(tmp_path / "st", weight, bias) / "model.safetensors"
    st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated"):
        load_head(st)
    st.write_bytes(b"\x05")
    with pytest.raises(ModelError, match="too short"):
        load_head(st)
    pt = write_bin_head(tmp_path / "pt", weight, bias) / "pytorch_model.bin"
    pt.write_bytes(pt.read_bytes()[:-200])  # the zip's directory is lost
    with pytest.raises(ModelError, match="not a zip archive"):
        load_head(pt)
    # A storage shorter than its tensors: the zip is whole but the data is not.
    data = torch_pickle({"linear.weight": ("0", weight.size, weight.shape, (HIDDEN, 1))})
    short = write_torch_zip(tmp_path / "short.bin", data, {"0": weight.tobytes()[:1000]})
    with pytest.raises(ModelError, match="storage 0 holds 1000 bytes"):
        load_head(short)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    exploit = pickle.dumps(_Exploit(marker), protocol=2)
    evil = write_torch_zip(tmp_path / "evil" / "pytorch_model.bin", exploit, {})
    with pytest.raises(ModelError, match=r"asks for (posix|nt)\.system.*refused, nothing was run"):
        load_head(evil.parent)
    assert not marker.exists()
    # Hidden inside an otherwise valid state dict, and by other routes to code.
    weight, _ = synthetic()
    valid = torch_pickle({"linear.weight": ("0", weight.size, weight.shape, (HIDDEN, 1))})
    for payload in (
        valid[:-2] + pickle.GLOBAL + b"builtins\neval\n" + _tuple([_text("1")]) + pickle.REDUCE + b"0u.",
        pickle.PROTO + b"\x02" + pickle.GLOBAL + b"subprocess\nPopen\n" + pickle.STOP,
        pickle.PROTO + b"\x02" + pickle.GLOBAL + b"torch\nload\n" + pickle.STOP,
    ):
        bad = write_torch_zip(tmp_path / "evil2.bin", payload, {"0": weight.tobytes()})
        with pytest.raises(ModelError, match="refused"):
            read_torch_zip(bad)
    # A legacy (pre-zip) torch file is a bare pickle: refused before it is unpickled at all.
    legacy = tmp_path / "legacy.bin"
    legacy.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    with pytest.raises(ModelError, match="not a zip archive"):
        load_head(legacy)
    assert not marker.exists()


# -- the engine ----------------------------------------------------------------------


def _reference(
    plain: LlamaEmbedder, texts: list[str], role: str, weight: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """normalize(W @ mean-pooled state + b), the pooled state taken from the model's token
    states (llama.cpp's mean pooling averages every token of the framed input)."""
    pooled = np.stack([plain.token_states(plain.tokenize(t), role).mean(axis=0) for t in texts])
    return normalize_rows(pooled @ weight.T + bias)


@pytest.fixture(scope="module")
def head_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    weight, bias = synthetic()
    root = tmp_path_factory.mktemp("heads")
    return {
        "safetensors": write_safetensors_head(root / "st", weight, bias),
        "bin": write_bin_head(root / "pt", weight, bias) / "pytorch_model.bin",
    }


def test_the_engine_applies_the_head_before_normalizing(
    default_model: Path, head_folders: dict[str, Path]
) -> None:
    weight, bias = synthetic()
    common: dict[str, Any] = {
        "threads": 1,
        "max_tokens": 128,
        "query_prefix": "query: ",
        "document_prefix": "passage: ",
    }
    plain = LlamaEmbedder(default_model, **common)
    headed = LlamaEmbedder(default_model, **common, head=head_folders["safetensors"])
    from_bin = LlamaEmbedder(default_model, **common, head=head_folders["bin"])
    try:
        assert (plain.dimensions, headed.dimensions, headed.hidden_size) == (HIDDEN, OUT, HIDDEN)
        for role in ("document", "query"):
            expected = _reference(plain, TEXTS, role, weight, bias)
            got = headed.embed_texts(TEXTS, role)
            assert got.shape == (len(TEXTS), OUT)
            np.testing.assert_allclose(got, expected, atol=2e-4)
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
            np.testing.assert_allclose(from_bin.embed_texts(TEXTS, role), got, atol=1e-6)
        # Late chunking pools spans, then the same head.
        tokens = headed.tokenize(" ".join(TEXTS))
        late = headed.embed_late(tokens, [(0, 5), (5, len(tokens))])
        assert late.shape == (2, OUT)
        np.testing.assert_allclose(np.linalg.norm(late, axis=1), 1.0, atol=1e-5)
    finally:
        for engine in (plain, headed, from_bin):
            engine.close()


def test_the_child_process_engine_applies_the_same_head(
    default_model: Path, head_folders: dict[str, Path]
) -> None:
    with ProcessEmbedder(default_model, threads=1, max_tokens=128, head=head_folders["bin"]) as child:
        assert child.dimensions == OUT
        in_process = LlamaEmbedder(default_model, threads=1, max_tokens=128, head=head_folders["safetensors"])
        try:
            for role in ("document", "query"):
                np.testing.assert_allclose(
                    child.embed_texts(TEXTS, role), in_process.embed_texts(TEXTS, role), atol=1e-6
                )
        finally:
            in_process.close()


def test_a_bad_head_stops_either_engine_with_its_reason(default_model: Path, tmp_path: Path) -> None:
    weight, bias = synthetic(inp=100)
    folder = write_safetensors_head(tmp_path / "narrow", weight, bias)
    with pytest.raises(ModelError, match="takes 100-dimension vectors; the model gives 384"):
        LlamaEmbedder(default_model, threads=1, max_tokens=64, head=folder)
    with pytest.raises(ModelError, match="takes 100-dimension vectors; the model gives 384"):
        ProcessEmbedder(default_model, threads=1, max_tokens=64, head=folder)


# -- the catalog, the manager and the index --------------------------------------------


def test_the_catalog_gives_stella_its_heads() -> None:
    catalog = load_catalog()
    stella = catalog.get("stella_en_1.5B_v5")
    assert stella.output_heads == (1024, 256, 768, 2048, 4096, 6144, 8192)
    assert (stella.dimensions, stella.default_dimensions, stella.head_for(0)) == (1536, 1024, 1024)
    assert (stella.head_for(256), stella.head_for(300), stella.head_for(1536)) == (256, 768, 2048)
    assert stella.dimension_note(2048) == ""
    assert "768 head's vectors are cut to 700" in stella.dimension_note(700)
    with pytest.raises(ModelError, match="9000 is too many"):
        stella.head_for(9000)
    shown = stella.as_dict()
    assert shown["matryoshka_dimensions"] == [8192, 6144, 4096, 2048, 1024, 768, 256]
    assert shown["default_dimensions"] == 1024
    assert all(entry.output_heads == () for entry in catalog if entry.name != "stella_en_1-5b_v5")


def test_models_info_and_list_show_the_heads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", "stella_en_1.5B_v5"]) == 0
    out = capsys.readouterr().out
    assert "output heads:           1024, 256, 768, 2048, 4096, 6144, 8192" in out
    assert "matryoshka dimensions:  8192, 6144" in out and "default dimensions:     1024" in out
    assert main(["models", "list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "stella_en_1-5b_v5" in ln)
    assert " 1024ʰ " in line


def _headed_catalog(**overrides: object) -> Catalog:
    fields: dict[str, object] = {
        "display_name": "Headed",
        "hf_repo": "test/headed",
        "hf_file": "",
        "dimensions": HIDDEN,
        "output_heads": [OUT, 96],
        "layers": 6,
        "max_context": 512,
    }
    entry = _entry(**{**fields, **overrides})
    return Catalog.parse(tomli_w.dumps({"schema": 1, "models": {"headed": entry}}))


def _serve_head(
    server: FakeHub, root: Path, size: int, *, formats: tuple[str, ...] = ("safetensors",), inp: int = HIDDEN
) -> None:
    """Put a head of `size` on the stand-in hub as 2_Dense_<size>/ in the given formats."""
    weight, bias = synthetic(size, inp, seed=size)
    folder = root / "hub" / str(size)
    write_safetensors_head(folder, weight, bias)
    write_bin_head(folder, weight, bias)
    server.files[("test/headed", f"2_Dense_{size}/config.json")] = (folder / "config.json").read_bytes()
    for fmt in formats:
        name = "model.safetensors" if fmt == "safetensors" else "pytorch_model.bin"
        server.files[("test/headed", f"2_Dense_{size}/{name}")] = (folder / name).read_bytes()


def test_download_fetches_the_chosen_head(hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    catalog = _headed_catalog()
    _serve_head(hub, tmp_path, OUT)
    _serve_head(hub, tmp_path, 96, formats=("bin",))  # an older revision: the pickle only
    messages: list[str] = []
    path = manager.download_model("headed", catalog=catalog, report=messages.append)
    assert path == paths.models_dir() / f"headed.head{OUT}.safetensors"
    assert load_head(path, in_features=HIDDEN).out_features == OUT
    assert path.with_suffix(".json").is_file()
    assert any("models import" in m for m in messages)  # the model itself comes by import
    # --dimensions 90 needs the 96 head; the hub has it as pytorch_model.bin only.
    path = manager.download_model("headed", dimensions=90, catalog=catalog)
    assert path.name == "headed.head96.bin" and load_head(path).out_features == 96
    assert sorted(manager.head_files("headed")) == [OUT, 96]
    leftovers = sorted(p.name for p in paths.models_dir().rglob("*") if p.is_file())
    assert leftovers == [
        "headed.head48.json",
        "headed.head48.safetensors",
        "headed.head96.bin",
        "headed.head96.json",
    ]
    # Every file went through the hub's metadata (size and sha256), then a GET.
    assert sum(1 for r in hub.requests if r[0] == "HEAD") >= 4


def test_a_downloaded_head_that_does_not_fit_is_not_installed(hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    _serve_head(hub, tmp_path, OUT, inp=100)
    with pytest.raises(ModelError, match="takes 100-dimension vectors; the model gives 384"):
        manager.download_model("headed", catalog=_headed_catalog())
    assert not [p for p in paths.models_dir().rglob("*") if p.is_file()]


def test_use_picks_a_head_and_the_index_keeps_heads_apart(
    default_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    catalog = _headed_catalog()
    monkeypatch.setattr(catalog_module, "_cached", catalog)  # the service reads the installed catalog
    models = paths.models_dir()
    models.mkdir(parents=True, exist_ok=True)
    (models / "headed.Q8_0.gguf").symlink_to(default_model)
    with pytest.raises(ModelError, match=r"models download headed --dimensions 48"):
        use_model("headed", catalog=catalog)
    for size in (OUT, 96):
        weight, bias = synthetic(size, seed=size)
        folder = write_safetensors_head(tmp_path / str(size), weight, bias)
        os.replace(folder / "model.safetensors", models / f"headed.head{size}.safetensors")
        os.replace(folder / "config.json", models / f"headed.head{size}.json")

    result = use_model("headed", catalog=catalog)  # the default head
    assert (result.head, result.as_dict()["dimensions"], result.notes) == (OUT, OUT, [])
    assert settings_module.load().dimensions == OUT
    result = use_model("headed", dimensions=96, catalog=catalog)
    assert (result.head, settings_module.load().dimensions, result.notes) == (96, 96, [])
    result = use_model("headed", dimensions=60, catalog=catalog)  # no 60 head: 96, cut
    assert (result.head, result.as_dict()["dimensions"]) == (96, 60)
    assert "lossy" in result.notes[0]
    with pytest.raises(ModelError, match="too many"):
        use_model("headed", dimensions=200, catalog=catalog)

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"{i}.txt").write_text(text)
    keys = {}
    for dims in (OUT, 60):
        settings = settings_module.load()
        settings.model, settings.dimensions, settings.threads = "headed", dims, 1
        with LocalSearch(settings, db_path=tmp_path / "index.sqlite3") as service:
            list(service.index_paths([docs]))
            keys[dims] = service.space_key
            assert service.embedder.dimensions == (OUT if dims == OUT else 96)
            assert service.space.dimensions == dims
            hits = service.search("a cat on a mat", 3, mode="semantic")
            assert hits and hits[0].path.endswith("0.txt")
    assert keys == {OUT: "headed+names#head48", 60: "headed+names#head96"}


@pytest.mark.parametrize("heads", [[0], [48, 48], ["48"], [True]])
def test_a_catalog_entry_with_malformed_heads_is_refused(heads: list[object]) -> None:
    with pytest.raises(ModelError, match="output_heads must list distinct positive sizes"):
        _headed_catalog(output_heads=heads)
