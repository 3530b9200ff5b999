"""jina-embeddings-v3's task adapters end to end, offline: a tiny random XLMRobertaLoRA
written in Hugging Face form (LoRA parametrizations with a task dimension, a Unigram
tokenizer), converted by our converter to a jina-bert-v3 GGUF plus one LoRA GGUF per task,
run by llama.cpp, and checked against a NumPy forward pass with each task's LoRA merged
into the weights (W + alpha/rank · B·A)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import gguf
from localsearch import paths
from localsearch.cli import main
from localsearch.core.embedding import LlamaEmbedder
from localsearch.core.engine_process import ProcessEmbedder
from localsearch.core.models import manager
from localsearch.core.models.convert import convert_hf, convert_jina_v3, detect_architecture
from localsearch.core.models.gguf_io import inspect_adapter, inspect_gguf
from localsearch.core.service import default_embedder_factory
from localsearch.errors import ModelError
from localsearch.settings import Settings
from tests.core.choose import use_model
from tests.core.tiny_models import gelu, layer_norm

TASKS = ["retrieval.query", "retrieval.passage", "separation", "classification", "text-matching"]
PROMPTS = {
    "retrieval.query": "Represent the query for retrieving evidence documents: ",
    "retrieval.passage": "Represent the document for retrieval: ",
    "separation": "",
    "classification": "",
    "text-matching": "",
}
BOS, PAD, EOS, UNK = 0, 1, 2, 3
WORDS = ["▁the", "▁cat", "▁sat", "▁on", "▁mat", "▁a", "▁query", "▁document", "▁represent", "▁for"]
WORDS += ["▁retrieving", "▁evidence", "▁documents", "▁retrieval", ":", "▁", *"abcdefghijklmnopqrstuvwxyz"]


@dataclass
class V3Config:
    hidden: int = 32
    heads: int = 4
    layers: int = 2
    intermediate: int = 64
    vocab: int = 72
    rank: int = 4
    alpha: float = 2.0
    rope_base: float = 20000.0
    eps: float = 1e-5


CFG = V3Config()


def _f16(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def _pieces(cfg: V3Config) -> list[tuple[str, float]]:
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(w, -2.0 - 0.1 * i) for i, w in enumerate(WORDS)]
    pieces += [(f"▁w{i}", -8.0) for i in range(cfg.vocab - 1 - len(pieces))]
    return pieces  # and <mask>, an added token, last


def random_v3(cfg: V3Config, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(base weights, LoRA weights) by Hugging Face name, without the "roberta." prefix and
    the parametrization suffixes: base "x.weight", LoRA "x.lora_A" / "x.lora_B"."""
    rng = np.random.default_rng(seed)
    h, ff, r, n = cfg.hidden, cfg.intermediate, cfg.rank, len(TASKS)
    base: dict[str, np.ndarray] = {}
    lora: dict[str, np.ndarray] = {}

    def linear(name: str, rows: int, cols: int) -> None:
        base[name + ".weight"] = _f16(rng.normal(0, 1 / math.sqrt(cols), (rows, cols)).astype(np.float32))
        base[name + ".bias"] = rng.normal(0, 0.1, rows).astype(np.float32)
        lora[name + ".lora_A"] = rng.normal(0, 1 / math.sqrt(cols), (n, r, cols)).astype(np.float32)
        lora[name + ".lora_B"] = rng.normal(0, 0.4, (n, rows, r)).astype(np.float32)

    def embedding(name: str, rows: int) -> None:
        base[name + ".weight"] = _f16(rng.normal(0, 1, (rows, h)).astype(np.float32))
        lora[name + ".lora_A"] = rng.normal(0, 0.5, (n, rows, r)).astype(np.float32)
        lora[name + ".lora_B"] = rng.normal(0, 0.5, (n, r, h)).astype(np.float32)

    def norm(name: str) -> None:
        base[name + ".weight"] = (1 + rng.normal(0, 0.1, h)).astype(np.float32)
        base[name + ".bias"] = rng.normal(0, 0.1, h).astype(np.float32)

    embedding("embeddings.word_embeddings", cfg.vocab)
    embedding("embeddings.token_type_embeddings", 1)
    base["embeddings.token_type_embeddings.weight"] = base["embeddings.token_type_embeddings.weight"] * 0.5
    norm("emb_ln")
    for i in range(cfg.layers):
        p = f"encoder.layers.{i}."
        linear(p + "mixer.Wqkv", 3 * h, h)
        linear(p + "mixer.out_proj", h, h)
        norm(p + "norm1")
        linear(p + "mlp.fc1", ff, h)
        linear(p + "mlp.fc2", h, ff)
        norm(p + "norm2")
    linear("pooler.dense", h, h)  # unused by mean pooling; the converter drops it
    return base, lora


def write_v3_folder(
    folder: Path, cfg: V3Config, base: dict[str, np.ndarray], lora: dict[str, np.ndarray]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for name, value in base.items():
        module, _, kind = name.rpartition(".")
        if kind == "weight" and module + ".lora_A" in lora:
            tensors[f"roberta.{module}.parametrizations.weight.original"] = value
        else:
            tensors[f"roberta.{name}"] = value
    for name, value in lora.items():
        module, _, kind = name.rpartition(".")
        tensors[f"roberta.{module}.parametrizations.weight.0.{kind}"] = value
    save_file(tensors, str(folder / "model.safetensors"))
    config = {
        "architectures": ["XLMRobertaModel"],
        "auto_map": {"AutoModel": "jinaai/xlm-roberta-flash-implementation--modeling_lora.XLMRobertaLoRA"},
        "model_type": "xlm-roberta",
        "hidden_size": cfg.hidden,
        "num_attention_heads": cfg.heads,
        "num_hidden_layers": cfg.layers,
        "intermediate_size": cfg.intermediate,
        "max_position_embeddings": 8194,
        "pad_token_id": PAD,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "vocab_size": cfg.vocab,
        "type_vocab_size": 1,
        "layer_norm_eps": cfg.eps,
        "hidden_act": "gelu",
        "position_embedding_type": "rotary",
        "rotary_emb_base": cfg.rope_base,
        "lora_adaptations": TASKS,
        "lora_rank": cfg.rank,
        "lora_alpha": cfg.alpha,
        "task_instructions": PROMPTS,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    pieces = _pieces(cfg)
    added = [
        {
            "id": i,
            "content": p,
            "special": True,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
        }
        for i, (p, _) in enumerate(pieces[:4])
    ]
    added.append({**added[0], "id": cfg.vocab - 1, "content": "<mask>", "lstrip": True})
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}],
        },
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [EOS], "tokens": ["</s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "model": {
            "type": "Unigram",
            "unk_id": UNK,
            "vocab": [[p, s] for p, s in pieces],
            "byte_fallback": False,
        },
    }
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "sep_token": "</s>",
                "pad_token": "<pad>",
                "cls_token": "<s>",
                "mask_token": "<mask>",
                "clean_up_tokenization_spaces": True,
                "tokenizer_class": "XLMRobertaTokenizer",
            }
        ),
        encoding="utf-8",
    )
    return folder


def _rotary(x: np.ndarray, base: float) -> np.ndarray:
    """NeoX-style rotary embedding of one head (n, d): dimension i turns with i + d/2."""
    n, d = x.shape
    half = d // 2
    inv = base ** (-np.arange(half) * 2.0 / d)
    angles = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(angles), np.sin(angles)
    x1, x2 = x[:, :half], x[:, half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=1)


def merged(
    base: dict[str, np.ndarray], lora: dict[str, np.ndarray], task: str | None, cfg: V3Config
) -> dict[str, np.ndarray]:
    """The weights a task uses: W + alpha/rank · B·A (linear), W + alpha/rank · A·B (embeddings)."""
    w = {k: v.astype(np.float64) for k, v in base.items()}
    if task is None:
        return w
    t = TASKS.index(task)
    scale = cfg.alpha / cfg.rank
    for name in {k.rpartition(".")[0] for k in lora}:
        a, b = lora[name + ".lora_A"][t].astype(np.float64), lora[name + ".lora_B"][t].astype(np.float64)
        delta = a @ b if name.startswith("embeddings.") else b @ a
        w[name + ".weight"] = w[name + ".weight"] + scale * delta
    return w


def reference(
    base: dict[str, np.ndarray],
    lora: dict[str, np.ndarray],
    task: str | None,
    tokens: list[int],
    cfg: V3Config = CFG,
) -> np.ndarray:
    """Mean-pooled, normalized embedding of `tokens` (<s> ... </s> included) under `task`."""
    w = merged(base, lora, task, cfg)
    ids = np.asarray(tokens)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["emb_ln.weight"], w["emb_ln.bias"], cfg.eps)
    d = cfg.hidden // cfg.heads
    for i in range(cfg.layers):
        p = f"encoder.layers.{i}."

        def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        qkv = lin(x, "mixer.Wqkv")
        q, k, v = qkv[:, : cfg.hidden], qkv[:, cfg.hidden : 2 * cfg.hidden], qkv[:, 2 * cfg.hidden :]
        out = np.empty_like(q)
        for head in range(cfg.heads):
            cols = slice(head * d, (head + 1) * d)
            qh, kh = _rotary(q[:, cols], cfg.rope_base), _rotary(k[:, cols], cfg.rope_base)
            scores = qh @ kh.T / math.sqrt(d)
            scores -= scores.max(axis=1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=1, keepdims=True)
            out[:, cols] = probs @ v[:, cols]
        x = layer_norm(lin(out, "mixer.out_proj") + x, w[p + "norm1.weight"], w[p + "norm1.bias"], cfg.eps)
        y = lin(gelu(lin(x, "mlp.fc1")), "mlp.fc2")
        x = layer_norm(y + x, w[p + "norm2.weight"], w[p + "norm2.bias"], cfg.eps)
    pooled = x.mean(axis=0)
    return (pooled / np.linalg.norm(pooled)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_v3(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    base, lora = random_v3(CFG, seed=11)
    folder = write_v3_folder(tmp_path_factory.mktemp("v3") / "tiny-jina-v3", CFG, base, lora)
    return folder, base, lora


@pytest.fixture(scope="module")
def converted(tiny_v3: tuple[Path, dict, dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _, _ = tiny_v3
    return convert_hf(
        folder, tmp_path_factory.mktemp("v3gguf") / "tiny-jina-v3.F16.gguf", name="tiny-jina-v3"
    )


def _adapter(model: Path, task: str) -> Path:
    return model.with_name(f"tiny-jina-v3.lora-{task}.gguf")


def _embed(model: Path, tokens: list[list[int]], adapter: Path | None) -> np.ndarray:
    """Embedded as queries, with `adapter` (or none) on the query role."""
    embedder = LlamaEmbedder(
        model, threads=2, adapters={"query": adapter} if adapter else None, allow_missing_adapters=True
    )
    try:
        return embedder.embed_tokens(tokens, role="query")
    finally:
        embedder.close()


def test_converts_to_jina_bert_v3_and_one_adapter_per_task(tiny_v3: tuple, converted: Path) -> None:
    folder, _, lora = tiny_v3
    assert detect_architecture(folder) == "jina-bert-v3"
    info = inspect_gguf(converted)
    assert (info.architecture, info.block_count, info.context_length) == ("jina-bert-v3", 2, 8192)
    reader = gguf.GGUFReader(str(converted))
    assert reader.fields["jina-bert-v3.rope.freq_base"].contents() == pytest.approx(CFG.rope_base)
    assert reader.fields["tokenizer.ggml.model"].contents() == "t5"  # llama.cpp's Unigram (UGM)
    names = {t.name for t in reader.tensors}
    assert "blk.0.attn_qkv.weight" in names and not any("pooler" in n or "lora" in n for n in names)
    for task in TASKS:
        adapter = inspect_adapter(_adapter(converted, task))
        assert (adapter.task, adapter.prompt_prefix, adapter.alpha) == (task, PROMPTS[task], CFG.alpha)
        assert adapter.architecture == "jina-bert-v3"
        tensors = {t.name: t for t in gguf.GGUFReader(str(adapter.path)).tensors}
        assert "blk.1.ffn_down.weight.lora_b" in tensors and "token_types.weight.lora_a" not in tensors
        # The token-type delta rides on token_embd as one more rank.
        assert list(tensors["token_embd.weight.lora_b"].shape) == [CFG.rank + 1, CFG.hidden]
    assert lora["embeddings.token_type_embeddings.lora_A"].any()


def test_tokenizes_like_the_hugging_face_tokenizer(tiny_v3: tuple, converted: Path) -> None:
    """Also with the prompt tokenized apart from the text, as the engine does: the prompt's
    trailing space goes (SentencePiece strips it) and comes back as the text's leading '▁'.
    Hugging Face keeps a lone '▁' for leading/trailing spaces; llama.cpp, like SentencePiece,
    drops them: texts here have none."""
    tokenizers = pytest.importorskip("tokenizers")
    folder, _, _ = tiny_v3
    hf = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    embedder = LlamaEmbedder(converted, threads=1, allow_missing_adapters=True)
    try:
        for text in ["the cat sat on a mat", "query   documents xyz", "Retrieval: a document, évidence"]:
            assert [BOS, *embedder.tokenize(text), EOS] == hf.encode(text).ids, text
            for prompt in PROMPTS.values():
                ours = [BOS, *embedder.tokenize(prompt), *embedder.tokenize(text), EOS]
                assert ours == hf.encode(prompt + text).ids, (prompt, text)
    finally:
        embedder.close()


def test_embeddings_match_the_reference_with_each_adapter_and_without(
    tiny_v3: tuple, converted: Path
) -> None:
    _, base, lora = tiny_v3
    rng = np.random.default_rng(4)
    sequences = [rng.integers(4, CFG.vocab - 1, n).tolist() for n in (7, 1500)]
    framed = [[BOS, *tokens, EOS] for tokens in sequences]
    plain = [reference(base, lora, None, tokens) for tokens in framed]
    for task in [None, *TASKS]:
        got = _embed(converted, sequences, _adapter(converted, task) if task else None)
        for vector, tokens, untuned in zip(got, framed, plain, strict=True):
            expected = reference(base, lora, task, tokens)
            assert float(vector @ expected) > 0.9999, task
            assert np.abs(vector - expected).max() < 3e-3, task
            if task:  # each adapter really changes the vectors
                assert float(expected @ untuned) < 0.99, task
    # The tolerance above would notice rotary positions left out (the base itself is checked
    # in the file's metadata: 10000 against 20000 moves this tiny model's vectors too little).
    unrotated = reference(base, lora, None, framed[0], V3Config(rope_base=1e30))
    assert np.abs(unrotated - plain[0]).max() > 3e-3


def test_the_engine_refuses_the_model_without_its_adapters(converted: Path) -> None:
    with pytest.raises(ModelError, match="task adapter per role"):
        LlamaEmbedder(converted, threads=1, adapters={"query": _adapter(converted, "retrieval.query")})


def _settings(model: str) -> Settings:
    return Settings(model=model, chunk_tokens=256)  # type: ignore[call-arg]


@pytest.mark.parametrize("for_queries", [True, False], ids=["in-process", "child-process"])
def test_each_role_gets_its_adapter_and_prompt_through_the_engine(tiny_v3: tuple, for_queries: bool) -> None:
    folder, base, lora = tiny_v3
    manager.convert_model(folder)
    embedder = default_embedder_factory(_settings("tiny-jina-v3"), for_queries)
    try:
        assert isinstance(embedder, LlamaEmbedder if for_queries else ProcessEmbedder)
        tokens = embedder.tokenize("the cat sat on a mat")
        query = embedder.embed_tokens([tokens], role="query")[0]
        document = embedder.embed_tokens([tokens], role="document")[0]
        for role, vector, task in (
            ("query", query, "retrieval.query"),
            ("document", document, "retrieval.passage"),
        ):
            prompt = embedder.tokenize(PROMPTS[task])
            assert getattr(embedder, f"{role}_prefix_tokens") == len(prompt) > 0
            expected = reference(base, lora, task, [BOS, *prompt, *tokens, EOS])
            assert float(vector @ expected) > 0.9999, role
        assert float(query @ document) < 0.99
    finally:
        embedder.close()  # type: ignore[attr-defined]


def test_models_info_shows_the_adapters(tiny_v3: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _, _ = tiny_v3
    manager.convert_model(folder)
    info = manager.model_info("tiny-jina-v3")
    assert sorted(info["adapters"]) == sorted(TASKS) and "adapters_missing" not in info
    assert info["adapters"]["retrieval.query"]["prompt_prefix"] == PROMPTS["retrieval.query"]
    assert main(["models", "info", "tiny-jina-v3"]) == 0
    out = capsys.readouterr().out
    assert "adapter retrieval.query:" in out and "used for query" in out and "used for document" in out
    notes = use_model("tiny-jina-v3").notes
    assert any("retrieval.passage adapter" in note for note in notes)


def test_a_missing_or_bad_adapter_is_a_clear_error(tiny_v3: tuple, tmp_path: Path) -> None:
    folder, _, _ = tiny_v3
    model = manager.convert_model(folder)
    settings = _settings("tiny-jina-v3")
    passage = manager.adapter_file("tiny-jina-v3", "retrieval.passage")
    saved = passage.read_bytes()

    passage.unlink()
    with pytest.raises(ModelError, match=r"needs its task adapter retrieval\.passage.*models convert"):
        default_embedder_factory(settings, True)
    assert manager.model_info("tiny-jina-v3")["adapters_missing"] == ["retrieval.passage"]
    with pytest.raises(ModelError, match=r"retrieval\.passage"):
        use_model("tiny-jina-v3")

    passage.write_bytes(saved[: len(saved) // 2])  # truncated
    with pytest.raises(ModelError, match=r"retrieval\.passage.*(truncated|damaged)"):
        default_embedder_factory(settings, True)

    # An adapter made for another model: llama.cpp refuses it, and so do we (no abort).
    other_cfg = V3Config(hidden=16, intermediate=32)
    other = write_v3_folder(tmp_path / "other", other_cfg, *random_v3(other_cfg, seed=3))
    _, adapters = convert_jina_v3(other, tmp_path / "other.F16.gguf")
    passage.write_bytes(adapters["retrieval.passage"].read_bytes())
    with pytest.raises(ModelError, match="could not load the document adapter"):
        default_embedder_factory(settings, True)
    assert model.is_file()


def test_an_adapter_gguf_imports_beside_its_model(converted: Path) -> None:
    target = manager.import_model(_adapter(converted, "separation"), name="Tiny Jina V3")
    assert target == paths.models_dir() / "tiny-jina-v3.lora-separation.gguf"
    assert inspect_adapter(target).task == "separation"


@pytest.mark.parametrize("fail_at", [1, 3, 5])
def test_a_failure_between_renames_leaves_all_files_or_none(
    tiny_v3: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """The model and its five adapters are renamed into place one after another; a failure
    after some of them leaves what was there before, first with nothing there, then with
    an earlier conversion there."""
    from localsearch.core.models import convert as convert_module

    folder, _, _ = tiny_v3
    out = tmp_path / "tiny-jina-v3.F16.gguf"
    real_replace = os.replace

    def failing_after(count: int) -> Callable[..., None]:
        calls = {"n": 0}

        def replace(src: str | Path, dst: str | Path) -> None:
            calls["n"] += 1
            if calls["n"] == count:
                raise OSError(28, "No space left on device (injected)")
            real_replace(src, dst)

        return replace

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir())}

    monkeypatch.setattr(convert_module.os, "replace", failing_after(fail_at))
    with pytest.raises(OSError, match="injected"):
        convert_jina_v3(folder, out)
    assert files() == {}  # none: no model, no adapter, no partial file

    monkeypatch.setattr(convert_module.os, "replace", real_replace)
    convert_jina_v3(folder, out)
    before = files()
    assert len(before) == 1 + len(TASKS)
    monkeypatch.setattr(convert_module.os, "replace", failing_after(len(before) + fail_at))
    other = write_v3_folder(
        tmp_path.parent / f"other{fail_at}",
        V3Config(hidden=16, intermediate=32),
        *random_v3(V3Config(hidden=16, intermediate=32), seed=5),
    )
    with pytest.raises(OSError, match="injected"):
        convert_jina_v3(other, out)
    assert files() == before  # the earlier conversion, whole

    monkeypatch.setattr(convert_module.os, "replace", real_replace)
    convert_jina_v3(other, out)
    after = files()
    assert set(after) == set(before) and all(after[name] != before[name] for name in before)
