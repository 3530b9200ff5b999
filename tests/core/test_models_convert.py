"""Conversion (JinaBERT), slicing and import validation, against NumPy references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gguf
from localsearch import paths
from localsearch.core.embedding import LlamaEmbedder
from localsearch.core.models import manager
from localsearch.core.models.convert import convert_hf, detect_architecture
from localsearch.core.models.gguf_io import inspect_gguf, slice_gguf
from localsearch.errors import ModelError
from tests.core.tiny_models import CLS, SEP, TinyConfig, forward, random_weights, write_hf_folder

JINA = TinyConfig(jina=True, layers=2, max_positions=8192)
BERT = TinyConfig(layers=3)


@pytest.fixture(scope="module")
def tiny_jina(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    weights = random_weights(JINA, seed=1)
    folder = write_hf_folder(tmp_path_factory.mktemp("jina") / "tiny-jina", JINA, weights)
    return folder, weights


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    weights = random_weights(BERT, seed=2)
    folder = write_hf_folder(tmp_path_factory.mktemp("bert") / "tiny-bert", BERT, weights)
    out = convert_hf(folder, folder.parent / "tiny-bert.F16.gguf")
    return out, weights


def _embed(path: Path, sequences: list[list[int]]) -> np.ndarray:
    embedder = LlamaEmbedder(path, threads=2)
    try:
        return embedder.embed_tokens(sequences)
    finally:
        embedder.close()


def test_jinabert_converts_and_embeds_8192_tokens_like_the_reference(
    tiny_jina: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    folder, weights = tiny_jina
    assert detect_architecture(folder) == "jina-bert-v2"
    out = convert_hf(folder, tmp_path / "tiny-jina.F16.gguf", name="tiny-jina")
    info = inspect_gguf(out)
    assert (info.architecture, info.block_count, info.context_length) == ("jina-bert-v2", 2, 8192)
    reader = gguf.GGUFReader(str(out))
    names = {t.name for t in reader.tensors}
    assert not any(n.startswith("position_embd") for n in names)  # ALiBi: no position table
    up = next(t for t in reader.tensors if t.name == "blk.0.ffn_up.weight")
    assert list(up.shape) == [JINA.hidden, 2 * JINA.intermediate]  # gate and value halves, fused

    rng = np.random.default_rng(7)
    long = rng.integers(5, JINA.vocab, 8192 - 2).tolist()  # 8192 tokens with [CLS] and [SEP]
    short = rng.integers(5, JINA.vocab, 9).tolist()
    embedder = LlamaEmbedder(out, threads=2)
    try:
        assert embedder.max_tokens == 8192
        got = embedder.embed_tokens([long, short])
    finally:
        embedder.close()
    for tokens, vector in zip((long, short), got, strict=True):
        expected = forward(weights, JINA, [CLS, *tokens, SEP])
        assert float(vector @ expected) > 0.9999
        assert np.abs(vector - expected).max() < 2e-3


def test_jinabert_reference_is_sensitive_to_what_it_checks(
    tiny_jina: tuple[Path, dict[str, np.ndarray]],
) -> None:
    """The tolerance above would catch a missing ALiBi bias or a swapped gate/value half."""
    _, weights = tiny_jina
    tokens = [CLS, *np.random.default_rng(3).integers(5, JINA.vocab, 200).tolist(), SEP]
    right = forward(weights, JINA, tokens)
    swapped = dict(weights)
    for i in range(JINA.layers):
        gated = weights[f"encoder.layer.{i}.mlp.gated_layers.weight"]
        swapped[f"encoder.layer.{i}.mlp.gated_layers.weight"] = np.concatenate(
            [gated[JINA.intermediate :], gated[: JINA.intermediate]]
        )
    assert float(right @ forward(swapped, JINA, tokens)) < 0.999
    assert float(right @ forward(weights, JINA, tokens, alibi=False)) < 0.999


def test_sliced_models_equal_the_first_layers_of_the_reference(
    tiny_bert: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    full, weights = tiny_bert
    rng = np.random.default_rng(5)
    sequences = [rng.integers(5, BERT.vocab, n).tolist() for n in (3, 17, 120)]
    for layers in (1, 2, 3):
        path = full if layers == 3 else slice_gguf(full, tmp_path / f"tiny.F16.L{layers}.gguf", layers)
        info = inspect_gguf(path)
        assert info.block_count == layers
        reader = gguf.GGUFReader(str(path))
        assert not [t.name for t in reader.tensors if t.name.startswith(f"blk.{layers}.")]
        got = _embed(path, sequences)
        for tokens, vector in zip(sequences, got, strict=True):
            expected = forward(weights, BERT, [CLS, *tokens, SEP], layers=layers)
            assert float(vector @ expected) > 0.9999, layers
            assert np.abs(vector - expected).max() < 2e-3
            if layers < 3:  # and a slice is not the whole model
                assert float(vector @ forward(weights, BERT, [CLS, *tokens, SEP])) < 0.99


def test_slicing_refuses_impossible_layer_counts(
    tiny_bert: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    full, _ = tiny_bert
    for layers in (0, 4):
        with pytest.raises(ModelError, match="layers"):
            slice_gguf(full, tmp_path / "bad.gguf", layers)
    assert not list(tmp_path.iterdir())


def test_slicing_a_quantized_file_copies_its_blocks(default_model: Path, tmp_path: Path) -> None:
    out = slice_gguf(default_model, tmp_path / "minilm.Q8_0.L2.gguf", 2)
    source = {t.name: t for t in gguf.GGUFReader(str(default_model)).tensors}
    for tensor in gguf.GGUFReader(str(out)).tensors:
        assert tensor.tensor_type == source[tensor.name].tensor_type
        assert np.array_equal(tensor.data, source[tensor.name].data)
    assert inspect_gguf(out).block_count == 2
    vectors = _embed(out, [[2023, 2003, 1037, 3231]])
    assert vectors.shape == (1, 384)


# ---------------------------------------------------------------------------------------
# import


def test_import_accepts_a_good_file_and_names_it_by_the_rule(
    tiny_bert: tuple[Path, dict[str, np.ndarray]],
) -> None:
    full, _ = tiny_bert
    target = manager.import_model(full, name="My Tiny")
    assert target == paths.models_dir() / "my-tiny.F16.gguf"
    assert target.read_bytes() == full.read_bytes()
    assert manager.resolve_model_file("my-tiny") == target
    assert [s.name for s in manager.list_models() if s.entry is None] == ["my-tiny"]


def test_import_derives_the_name_from_the_file(
    tiny_bert: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    full, _ = tiny_bert
    copy = tmp_path / "tiny-embedder-v1.5.Q8_0.gguf"
    copy.write_bytes(full.read_bytes())
    target = manager.import_model(copy)
    assert target.name == "tiny-embedder-v1-5.F16.gguf"  # the type comes from the file itself


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_import_rejects_a_truncated_file(
    cut: float, tiny_bert: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    full, _ = tiny_bert
    data = full.read_bytes()
    broken = tmp_path / "broken.F16.gguf"
    broken.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelError, match=r"truncated|damaged"):
        manager.import_model(broken)
    assert not list(paths.models_dir().glob("*.gguf*"))


def test_import_rejects_a_header_cut_short(
    tiny_bert: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    full, _ = tiny_bert
    broken = tmp_path / "head.gguf"
    broken.write_bytes(full.read_bytes()[:200])
    with pytest.raises(ModelError, match=r"truncated|damaged"):
        inspect_gguf(broken)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a GGUF"),
        (b"PK\x03\x04" + b"\0" * 100, "not a GGUF"),
        (b"GGUF" + (99).to_bytes(4, "little") + b"\0" * 100, "version 99"),
        (b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 100, "damaged|truncated"),
    ],
)
def test_import_rejects_garbage(content: bytes, message: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        manager.import_model(bad)
    assert not list(paths.models_dir().glob("*.gguf*"))


def test_import_rejects_an_architecture_llama_cpp_lacks(tmp_path: Path) -> None:
    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), arch="stella-new-model")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelError, match="does not support"):
        manager.import_model(path)


def test_import_rejects_a_tensor_pointing_past_the_end(
    tiny_bert: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    full, _ = tiny_bert
    reader = gguf.GGUFReader(str(full))
    last = max(reader.tensors, key=lambda t: t.data_offset)
    # Move the last tensor's recorded offset far beyond the file, leaving the size unchanged.
    data = bytearray(full.read_bytes())
    field = last.field
    offset_part = field.parts[-1]  # the tensor's data offset, relative to the data section
    position = int(field.offset) + sum(int(p.nbytes) for p in field.parts[:-1])
    assert int(offset_part[0]) == last.data_offset - reader.data_offset
    data[position : position + 8] = (int(offset_part[0]) + 10**6).to_bytes(8, "little")
    bad = tmp_path / "past-end.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"truncated|damaged"):
        inspect_gguf(bad)


def test_convert_refuses_other_architectures(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        '{"model_type": "xlm-roberta", "architectures": ["XLMRobertaModel"]}'
    )
    with pytest.raises(ModelError, match=r"llama\.cpp's"):
        manager.convert_model(tmp_path)


def test_convert_model_puts_the_file_in_the_models_folder(
    tiny_jina: tuple[Path, dict[str, np.ndarray]],
) -> None:
    folder, _ = tiny_jina
    target = manager.convert_model(folder)
    assert target == paths.models_dir() / "tiny-jina.F16.gguf"
    assert inspect_gguf(target).architecture == "jina-bert-v2"
    assert not list(paths.models_dir().glob("*.partial"))
