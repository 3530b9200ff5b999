"""The engine: parameter checks, prompts by role, Matryoshka truncation, late chunking,
task adapters (LoRA) and weight types, with the real default model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from localsearch.core.embedding import (
    LlamaEmbedder,
    check_geometry,
    late_windows,
    normalize_rows,
    quantize,
    reserved_tokens,
    truncate_dimensions,
)
from localsearch.core.models.convert import convert_bert
from localsearch.core.models.default import default_source
from localsearch.errors import ModelError
from tests.conftest import REFERENCE
from tests.fakes import FakeEmbedder

REFERENCE_JSON = REFERENCE / "all-minilm-l6-v2.reference.json"
TEXT = (
    "Aspirin irreversibly inhibits cyclooxygenase, which lowers the production of thromboxane. "
    "Platelets cannot make new enzyme, so the effect lasts for their whole lifetime. "
    "This is why a low daily dose is used to prevent heart attacks and strokes. "
    "Bleeding in the stomach is the main risk of long-term use."
)


@pytest.fixture(scope="module")
def engine(default_model: Path) -> Iterator[LlamaEmbedder]:
    embedder = LlamaEmbedder(default_model, max_tokens=256)
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory: pytest.TempPathFactory, default_model: Path) -> Iterator[Path]:
    with default_source() as source:
        yield source


@pytest.fixture(scope="session")
def f16_model(tmp_path_factory: pytest.TempPathFactory, hf_folder: Path) -> Path:
    out = tmp_path_factory.mktemp("engine-f16") / "minilm.F16.gguf"
    convert_bert(hf_folder, out, name="all-MiniLM-L6-v2")
    return out


def _reference() -> tuple[list[str], np.ndarray]:
    items = json.loads(REFERENCE_JSON.read_text())["items"]
    vectors = normalize_rows(np.array([it["embedding"] for it in items], dtype=np.float32))
    return [it["text"] for it in items], vectors


# -- parameters llama.cpp would abort on ---------------------------------------------
def test_context_geometry_that_would_abort_is_refused() -> None:
    good = {"max_tokens": 256, "batch_tokens": 256, "max_sequences": 64}
    good |= {"n_ctx_train": 512, "max_parallel": 256}
    check_geometry(**good)
    for bad in (
        {"batch_tokens": 128},  # an input longer than the micro-batch: the encoder assertion
        {"batch_tokens": 384},  # off the 256 grid: GGML_ASSERT in the pooling graph (embedding.py)
        {"max_tokens": 1024, "batch_tokens": 1024},  # beyond the model's context
        {"max_sequences": 0},
        {"max_sequences": 512},
    ):
        with pytest.raises(ModelError, match="Invalid engine settings"):
            check_geometry(**{**good, **bad})


def test_engine_rounds_its_batch_to_a_safe_size(default_model: Path) -> None:
    embedder = LlamaEmbedder(default_model, max_tokens=300, batch_tokens=100)
    try:
        assert (embedder.max_tokens, embedder.batch_tokens) == (300, 512)
        long = embedder.tokenize("word " * 1000)
        assert embedder.embed_tokens([long, long[:5]]).shape == (2, 384)
    finally:
        embedder.close()
    with pytest.raises(ModelError, match="max_sequences"):
        LlamaEmbedder(default_model, max_tokens=256, max_sequences=100_000)


# -- prompts by role -------------------------------------------------------------------
def test_each_role_gets_its_prompt(default_model: Path, engine: LlamaEmbedder) -> None:
    prompted = LlamaEmbedder(
        default_model, max_tokens=256, query_prefix="search_query: ", document_prefix="search_document: "
    )
    try:
        assert prompted.query_prefix_tokens == len(engine.tokenize("search_query: "))
        assert reserved_tokens(prompted, "document") == 2 + len(engine.tokenize("search_document: "))
        assert reserved_tokens(FakeEmbedder(), "query") == 2  # engines without prompts still work
        tokens = engine.tokenize("how does aspirin prevent strokes")
        as_query = prompted.embed_tokens([tokens], role="query")[0]
        as_document = prompted.embed_tokens([tokens], role="document")[0]
        by_hand_query = engine.embed_texts(["search_query: how does aspirin prevent strokes"])[0]
        by_hand_document = engine.embed_texts(["search_document: how does aspirin prevent strokes"])[0]
        assert float(as_query @ by_hand_query) > 0.99999
        assert float(as_document @ by_hand_document) > 0.99999
        assert float(as_query @ as_document) < 0.999
        # The prompt takes its room from the input, never from the context: still no abort.
        long = engine.tokenize("word " * 1000)
        assert prompted.embed_tokens([long], role="query").shape == (1, 384)
        with pytest.raises(ValueError, match="role"):
            prompted.embed_tokens([tokens], role="passage")
    finally:
        prompted.close()


def test_the_searcher_embeds_queries_as_queries() -> None:
    from localsearch.core.searcher import Searcher

    class Recording(FakeEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.roles: list[str] = []

        def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
            self.roles.append(role)
            return super().embed_tokens(sequences, role)

    class Space:
        dimensions = 64

    fake = Recording()
    searcher = Searcher(None, fake, Space())  # type: ignore[arg-type]
    searcher.embed_query("aspirin")
    assert fake.roles == ["query"]


# -- Matryoshka ------------------------------------------------------------------------
def test_truncation_equals_truncate_then_normalize(engine: LlamaEmbedder) -> None:
    full = engine.embed_texts([TEXT, "a short one", "heart attacks and strokes"])
    for dimensions in (256, 128, 64, 32):
        cut = truncate_dimensions(full, dimensions)
        expected = full[:, :dimensions] / np.linalg.norm(full[:, :dimensions], axis=1, keepdims=True)
        assert cut.shape == (3, dimensions) and cut.dtype == np.float32
        np.testing.assert_allclose(cut, expected, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-5)
    assert truncate_dimensions(full, 0) is full and truncate_dimensions(full, 384) is full


# -- late chunking ---------------------------------------------------------------------
def test_late_chunks_are_pooled_spans_of_one_pass(engine: LlamaEmbedder) -> None:
    sentences = [s + "." for s in TEXT.split(". ") if s]
    chunks = [engine.tokenize(s.rstrip(".") + ".") for s in sentences]
    # Chunks without overlap, laid out one after another (the indexer's late_layout).
    tokens = [token for chunk in chunks for token in chunk]
    ends = np.cumsum([len(chunk) for chunk in chunks]).tolist()
    spans = [(end - len(chunk), end) for chunk, end in zip(chunks, ends, strict=True)]
    assert len(tokens) == sum(len(c) for c in chunks) and spans[0] == (0, len(chunks[0]))

    late = engine.embed_late(tokens, spans)
    alone = engine.embed_tokens(chunks)
    states = engine.token_states(tokens)  # [CLS] + tokens + [SEP]
    assert states.shape == (len(tokens) + 2, 384)
    pooled = normalize_rows(np.vstack([states[1 + a : 1 + b].mean(axis=0) for a, b in spans]))
    np.testing.assert_allclose(late, pooled, atol=1e-5)
    # Each chunk carries its document: related to, but not the same as, the chunk alone.
    agreement = (late * alone).sum(axis=1)
    assert agreement.max() < 0.98 and agreement.min() > 0.5, agreement
    # The token-level pass is the model's own: pooling all of it gives the usual vector.
    whole = normalize_rows(states.mean(axis=0, keepdims=True))[0]
    assert float(whole @ engine.embed_tokens([tokens])[0]) > 0.9999


def test_long_documents_are_read_in_windows(default_model: Path) -> None:
    assert late_windows([(0, 5), (5, 9), (9, 12)], 10, 12) == [(0, 9, [0, 1]), (9, 12, [2])]
    assert late_windows([(0, 30)], 10, 30) == [(0, 10, [0])]
    with pytest.raises(ValueError):
        late_windows([(5, 40)], 10, 30)
    embedder = LlamaEmbedder(default_model, max_tokens=256, late_tokens=128)
    try:
        words = embedder.tokenize(TEXT * 8)
        spans = [(i, min(i + 40, len(words))) for i in range(0, len(words), 40)]
        late = embedder.embed_late(words, spans)
        assert late.shape == (len(spans), 384)
        np.testing.assert_allclose(np.linalg.norm(late, axis=1), 1.0, atol=1e-5)
        # The first window holds spans 0-2 (126 tokens of room): span 1 is pooled in it.
        states = embedder.token_states(words[0:120])
        expected = normalize_rows(states[1 + 40 : 1 + 80].mean(axis=0, keepdims=True))[0]
        assert float(late[1] @ expected) > 0.99999
    finally:
        embedder.close()


# -- task adapters (LoRA) -----------------------------------------------------------------
def _lora_factors(rank: int, layers: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        (
            rng.standard_normal((rank, width)).astype(np.float32) * 0.3,  # A: rank x in
            rng.standard_normal((width, rank)).astype(np.float32) * 0.3,  # B: out x rank
        )
        for _ in range(layers)
    ]


def test_a_task_adapter_changes_its_role_only_and_equals_merged_weights(
    tmp_path: Path, hf_folder: Path, f16_model: Path
) -> None:
    import shutil

    from safetensors.numpy import load_file, save_file

    import gguf

    rank, scale = 4, 0.5
    factors = _lora_factors(rank, 6, 384)
    adapter = tmp_path / "query-task.lora.gguf"
    writer = gguf.GGUFWriter(str(adapter), arch="bert")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))  # alpha / rank = 1
    for layer, (a, b) in enumerate(factors):
        writer.add_tensor(f"blk.{layer}.attn_q.weight.lora_a", a)
        writer.add_tensor(f"blk.{layer}.attn_q.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # The same change merged into the weights, through the ordinary converter.
    merged_folder = tmp_path / "merged"
    shutil.copytree(hf_folder, merged_folder)
    weights = load_file(str(merged_folder / "model.safetensors"))
    for layer, (a, b) in enumerate(factors):
        key = f"encoder.layer.{layer}.attention.self.query.weight"
        weights[key] = (weights[key].astype(np.float32) + scale * (b @ a)).astype(weights[key].dtype)
    save_file(weights, str(merged_folder / "model.safetensors"))
    merged_model = convert_bert(merged_folder, tmp_path / "merged.F16.gguf")

    texts = ["how does aspirin prevent strokes", TEXT]
    plain = LlamaEmbedder(f16_model, max_tokens=256)
    tasked = LlamaEmbedder(f16_model, max_tokens=256, adapters={"query": adapter}, adapter_scale=scale)
    merged = LlamaEmbedder(merged_model, max_tokens=256)
    try:
        tokens = [plain.tokenize(t) for t in texts]
        base = plain.embed_tokens(tokens)
        as_query = tasked.embed_tokens(tokens, role="query")
        as_document = tasked.embed_tokens(tokens, role="document")
        assert (as_document * base).sum(axis=1).min() > 0.99999  # no adapter for documents
        assert (as_query * base).sum(axis=1).max() < 0.999  # the adapter is applied
        assert (as_query * merged.embed_tokens(tokens)).sum(axis=1).min() > 0.9999
        again = tasked.embed_tokens(tokens, role="document")  # switching back clears it
        assert (again * base).sum(axis=1).min() > 0.99999
    finally:
        for embedder in (plain, tasked, merged):
            embedder.close()
    with pytest.raises(ModelError, match="Adapter file not found"):
        LlamaEmbedder(f16_model, adapters={"query": tmp_path / "missing.gguf"})


# -- weight types --------------------------------------------------------------------------
def test_bf16_weights_keep_fidelity(tmp_path: Path, f16_model: Path) -> None:
    bf16 = quantize(f16_model, tmp_path / "minilm.BF16.gguf", "bf16")
    texts, expected = _reference()
    embedder = LlamaEmbedder(bf16, max_tokens=256)
    try:
        got = embedder.embed_texts(texts)
    finally:
        embedder.close()
    assert (got * expected).sum(axis=1).min() >= 0.999


def test_the_models_own_pooling_is_used(tmp_path: Path, hf_folder: Path) -> None:
    import shutil

    cls_folder = tmp_path / "cls"
    shutil.copytree(hf_folder, cls_folder)
    pooling = cls_folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    pooling.write_text(json.dumps(config))
    embedder = LlamaEmbedder(convert_bert(cls_folder, tmp_path / "cls.F16.gguf"), max_tokens=256)
    try:
        tokens = embedder.tokenize(TEXT)
        cls_state = normalize_rows(embedder.token_states(tokens)[:1])[0]
        assert float(embedder.embed_tokens([tokens])[0] @ cls_state) > 0.99999
    finally:
        embedder.close()
