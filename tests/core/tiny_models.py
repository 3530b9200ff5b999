"""Tiny BERT and JinaBERT models with random weights, in Hugging Face form, and NumPy
forward passes that say what their embeddings must be.

The weights are rounded to float16 before they are written (stored as float32), so the
converter's F16 file holds exactly the numbers the reference multiplies with.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CLS, SEP = 2, 3


@dataclass
class TinyConfig:
    hidden: int = 32
    heads: int = 4
    layers: int = 3
    intermediate: int = 64
    vocab: int = 64
    max_positions: int = 512
    eps: float = 1e-12
    jina: bool = False


def _f16(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def random_weights(cfg: TinyConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, ff = cfg.hidden, cfg.intermediate

    def mat(rows: int, cols: int) -> np.ndarray:
        return _f16(rng.normal(0, 1 / math.sqrt(cols), (rows, cols)).astype(np.float32))

    def vec(n: int, center: float = 0.0, scale: float = 0.1) -> np.ndarray:
        return (center + rng.normal(0, scale, n)).astype(np.float32)

    w: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": _f16(rng.normal(0, 1, (cfg.vocab, h)).astype(np.float32)),
        # token_types stay F32 in the GGUF (as llama.cpp's converter keeps them)
        "embeddings.token_type_embeddings.weight": rng.normal(0, 0.5, (2, h)).astype(np.float32),
        "embeddings.LayerNorm.weight": vec(h, 1.0),
        "embeddings.LayerNorm.bias": vec(h),
    }
    if not cfg.jina:
        w["embeddings.position_embeddings.weight"] = rng.normal(0, 0.5, (cfg.max_positions, h)).astype(
            np.float32
        )
    for i in range(cfg.layers):
        p = f"encoder.layer.{i}."
        for part in ("query", "key", "value"):
            w[p + f"attention.self.{part}.weight"] = mat(h, h)
            w[p + f"attention.self.{part}.bias"] = vec(h)
        w[p + "attention.output.dense.weight"] = mat(h, h)
        w[p + "attention.output.dense.bias"] = vec(h)
        w[p + "attention.output.LayerNorm.weight"] = vec(h, 1.0)
        w[p + "attention.output.LayerNorm.bias"] = vec(h)
        if cfg.jina:
            w[p + "mlp.gated_layers.weight"] = mat(2 * ff, h)  # gate half, then value half; no bias
            w[p + "mlp.wo.weight"] = mat(h, ff)
            w[p + "mlp.wo.bias"] = vec(h)
            w[p + "mlp.layernorm.weight"] = vec(h, 1.0)
            w[p + "mlp.layernorm.bias"] = vec(h)
        else:
            w[p + "intermediate.dense.weight"] = mat(ff, h)
            w[p + "intermediate.dense.bias"] = vec(ff)
            w[p + "output.dense.weight"] = mat(h, ff)
            w[p + "output.dense.bias"] = vec(h)
            w[p + "output.LayerNorm.weight"] = vec(h, 1.0)
            w[p + "output.LayerNorm.bias"] = vec(h)
    return w


def write_hf_folder(folder: Path, cfg: TinyConfig, weights: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    words = SPECIAL + [f"w{i}" for i in range(cfg.vocab - len(SPECIAL))]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    config: dict = {
        "model_type": "bert",
        "hidden_size": cfg.hidden,
        "num_attention_heads": cfg.heads,
        "num_hidden_layers": cfg.layers,
        "intermediate_size": cfg.intermediate,
        "max_position_embeddings": cfg.max_positions,
        "vocab_size": cfg.vocab,
        "type_vocab_size": 2,
        "layer_norm_eps": cfg.eps,
        "hidden_act": "gelu",
    }
    if cfg.jina:
        config.update(
            architectures=["JinaBertForMaskedLM"],
            position_embedding_type="alibi",
            feed_forward_type="geglu",
            emb_pooler="mean",
        )
        # A masked-LM checkpoint also carries its head; the converter must leave it out.
        weights = dict(weights)
        weights["cls.predictions.bias"] = np.zeros(cfg.vocab, dtype=np.float32)
    else:
        config.update(architectures=["BertModel"], position_embedding_type="absolute")
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": cfg.hidden, "pooling_mode_mean_tokens": True})
        )
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}), encoding="utf-8")
    save_file(weights, str(folder / "model.safetensors"))
    return folder


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU that Hugging Face's "gelu" is."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))).astype(np.float32)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def alibi_slopes(heads: int) -> np.ndarray:
    """ALiBi's per-head slopes, 2^(-8(h+1)/n), for a power-of-two head count."""
    assert heads & (heads - 1) == 0
    return np.array([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])


def _attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, slopes: np.ndarray | None
) -> np.ndarray:
    n, hidden = q.shape
    d = hidden // heads
    out = np.empty_like(q)
    positions = np.arange(n)
    block = 1024  # rows at a time: an 8192 x 8192 score matrix per head would be 256 MB
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        qh, kh, vh = q[:, cols], k[:, cols], v[:, cols]
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            scores = (qh[rows] @ kh.T) / math.sqrt(d)
            if slopes is not None:  # symmetric ALiBi: -slope * |i - j|
                scores -= slopes[h] * np.abs(positions[rows, None] - positions[None, :])
            scores -= scores.max(axis=1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=1, keepdims=True)
            out[rows, cols] = probs @ vh
    return out


def forward(
    weights: dict[str, np.ndarray],
    cfg: TinyConfig,
    tokens: list[int],
    layers: int | None = None,
    *,
    alibi: bool = True,
) -> np.ndarray:
    """The mean-pooled, normalized embedding of `tokens` ([CLS] ... [SEP] included) after the
    first `layers` layers (all of them by default). alibi=False drops JinaBERT's position
    biases (to show the test would notice their absence)."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    ids = np.asarray(tokens)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
    if not cfg.jina:
        x = x + w["embeddings.position_embeddings.weight"][: len(ids)]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.eps)
    slopes = alibi_slopes(cfg.heads) if cfg.jina and alibi else None
    for i in range(cfg.layers if layers is None else layers):
        p = f"encoder.layer.{i}."

        def lin(x: np.ndarray, name: str, bias: bool = True, p: str = p) -> np.ndarray:
            y = x @ w[p + name + ".weight"].T
            return y + w[p + name + ".bias"] if bias else y

        q, k, v = (lin(x, f"attention.self.{part}") for part in ("query", "key", "value"))
        attn = lin(_attention(q, k, v, cfg.heads, slopes), "attention.output.dense")
        x = layer_norm(
            attn + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            cfg.eps,
        )
        if cfg.jina:
            both = lin(x, "mlp.gated_layers", bias=False)
            gated, value = both[:, : cfg.intermediate], both[:, cfg.intermediate :]
            y = lin(gelu(gated) * value, "mlp.wo")
            x = layer_norm(y + x, w[p + "mlp.layernorm.weight"], w[p + "mlp.layernorm.bias"], cfg.eps)
        else:
            y = lin(gelu(lin(x, "intermediate.dense")), "output.dense")
            x = layer_norm(y + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], cfg.eps)
    pooled = x.mean(axis=0)
    return (pooled / np.linalg.norm(pooled)).astype(np.float32)
