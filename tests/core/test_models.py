"""The offline default model: converted by our converter, checked against references."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import gguf
from localsearch.core.embedding import LlamaEmbedder
from localsearch.core.models.convert import convert_bert
from localsearch.core.models.default import default_source
from localsearch.errors import ModelError
from tests.conftest import REFERENCE

REFERENCE_JSON = REFERENCE / "all-minilm-l6-v2.reference.json"
LAYOUT = REFERENCE / "bert-gguf-layout.txt"


@pytest.fixture(scope="session")
def f16_model(tmp_path_factory: pytest.TempPathFactory, default_model: Path) -> Path:
    out = tmp_path_factory.mktemp("f16") / "minilm.F16.gguf"
    with default_source() as source:
        convert_bert(source, out, name="all-MiniLM-L6-v2")
    return out


def _reference() -> tuple[list[str], list[int], np.ndarray]:
    items = json.loads(REFERENCE_JSON.read_text())["items"]
    vectors = np.array([it["embedding"] for it in items], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [it["text"] for it in items], [it["n_tokens"] for it in items], vectors


@pytest.mark.parametrize(("which", "minimum"), [("f16", 0.999), ("q8_0", 0.998)])
def test_embeddings_match_sentence_transformers(
    which: str, minimum: float, f16_model: Path, default_model: Path
) -> None:
    path = f16_model if which == "f16" else default_model
    texts, n_tokens, expected = _reference()
    embedder = LlamaEmbedder(path, max_tokens=256)  # the reference used a 256-token limit
    try:
        tokens = [embedder.tokenize(t) for t in texts]
        assert [len(t) + 2 for t in tokens] == n_tokens  # the same WordPiece tokens as Hugging Face
        got = embedder.embed_tokens(tokens)
    finally:
        embedder.close()
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() >= minimum, dict(zip(texts, cosines.round(5), strict=True))


def test_converted_file_has_llama_cpps_bert_layout(f16_model: Path) -> None:
    layout = LAYOUT.read_text(encoding="utf-8")
    expected_tensors = dict(re.findall(r"^(\S+\.(?:weight|bias)) \[[0-9, ]+\] (\w+)$", layout, re.M))
    reader = gguf.GGUFReader(f16_model)
    tensors = {t.name: t.tensor_type.name for t in reader.tensors}
    assert tensors == expected_tensors
    expected_keys = {
        line.split(" = ")[0]
        for line in layout.splitlines()
        if " = " in line
        and not line.startswith(
            (
                "#",
                "general.dataset",
                "general.tags",
                "general.languages",
                "general.organization",
                "general.size_label",
                "general.license",
            )
        )
    }
    assert expected_keys <= set(reader.fields)
    assert reader.fields["tokenizer.ggml.pre"].contents() == "jina-v2-en"
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert tokens[:2] == ["[PAD]", "\u2581[unused0]"]
    assert tokens[101] == "[CLS]" and tokens[2015] == "s" and tokens[12293] == "\u2581passport"


@pytest.mark.parametrize(("which", "minimum"), [("f16", 0.99999), ("q8_0", 0.999)])
def test_batched_and_single_embeddings_agree(
    which: str, minimum: float, f16_model: Path, default_model: Path
) -> None:
    # Q8_0 kernels take a different path for many rows than for few, hence its looser bound.
    texts, _, _ = _reference()
    embedder = LlamaEmbedder(f16_model if which == "f16" else default_model, max_tokens=256)
    try:
        together = embedder.embed_texts(texts)
        alone = np.vstack([embedder.embed_texts([t]) for t in texts])
    finally:
        embedder.close()
    assert (together * alone).sum(axis=1).min() >= minimum


def test_inputs_longer_than_the_context_are_cut_not_fatal(default_model: Path) -> None:
    embedder = LlamaEmbedder(default_model, max_tokens=256)
    try:
        long = embedder.tokenize("word " * 5000)
        vectors = embedder.embed_tokens([long, long[:254], [], long[:3]])
    finally:
        embedder.close()
    assert vectors.shape == (4, 384)
    assert np.allclose(vectors[0], vectors[1], atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_weights_with_a_wrong_hash_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localsearch.core.models import default

    monkeypatch.setattr(default, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="refusing"):
        default.build_default_model(target_dir=tmp_path)
    assert not list(tmp_path.glob("*.gguf"))


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        LlamaEmbedder(tmp_path / "nope.gguf")


def test_manager_quantizes_to_q4_k_m_close_to_the_reference(f16_model: Path) -> None:
    from localsearch import paths
    from localsearch.core.models.manager import quantize_model

    installed = paths.models_dir() / "all-minilm-l6-v2.F16.gguf"
    shutil.copyfile(f16_model, installed)
    path = quantize_model("all-minilm-l6-v2", "q4_k_m")
    assert path == paths.models_dir() / "all-minilm-l6-v2.Q4_K_M.gguf"
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q4_K_M
    assert path.stat().st_size < installed.stat().st_size / 2
    texts, _, expected = _reference()
    embedder = LlamaEmbedder(path, max_tokens=256)
    try:
        got = embedder.embed_texts(texts)
    finally:
        embedder.close()
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() >= 0.97, dict(zip(texts, cosines.round(4), strict=True))
    with pytest.raises(ModelError, match="Unknown type"):
        quantize_model("all-minilm-l6-v2", "q3_k")
