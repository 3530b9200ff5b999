"""Hugging Face folders to GGUF files, without PyTorch.

The only module that imports `safetensors`; with gguf_io.py (reading, checking and slicing
GGUF files), the only one that imports `gguf`.

Conversion writes the metadata keys and tensor names llama.cpp's loaders read (the
layout llama.cpp's own converter produces), for two architectures:
- BERT (all-MiniLM-L6-v2, mxbai-embed-*, bge-*, snowflake-arctic-embed-xs/s/m/l);
- JinaBERT v2 (jina-embeddings-v2-*-en): no position embeddings (ALiBi attention biases,
  which llama.cpp builds itself) and a gated GELU feed-forward whose `gated_layers` matrix
  holds the gate half then the value half; llama.cpp reads it fused as `ffn_up` of twice
  the feed-forward width and splits it the same way.
- jina-embeddings-v3 (XLMRobertaLoRA) as "jina-bert-v3": rotary positions, fused QKV, a
  SentencePiece Unigram vocabulary, and its task LoRA adapters as separate adapter GGUFs
  (convert_jina_v3).
Tensor names come from the gguf library's per-architecture maps; every architecture's
weights pass through one loop (_write_tensors).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

import gguf
from localsearch.core.models.files import WEIGHT_TYPE
from localsearch.errors import ModelError

# 2-D matrices that stay F32 in the F16 file, as llama.cpp's converter keeps them.
_KEEP_F32 = {"position_embd.weight", "token_types.weight"}
# Hugging Face tensors that the embedding graph does not use.
_SKIP_SUFFIXES = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
_SKIP_PREFIXES = ("cls.",)  # masked-language-model heads (JinaBertForMaskedLM checkpoints)

ARCHITECTURES = {"bert": gguf.MODEL_ARCH.BERT, "jina-bert-v2": gguf.MODEL_ARCH.JINA_BERT_V2}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read {path.name} in {path.parent}: {exc}") from exc


def _vocab_words(folder: Path) -> list[str]:
    """The WordPiece vocabulary in id order, from vocab.txt or else tokenizer.json."""
    vocab_path = folder / "vocab.txt"
    if vocab_path.is_file():
        words = vocab_path.read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        return words
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        model = _read_json(tokenizer_json).get("model", {})
        if model.get("type") == "WordPiece" and isinstance(model.get("vocab"), dict):
            by_id = sorted(model["vocab"].items(), key=lambda item: item[1])
            if [i for _, i in by_id] != list(range(len(by_id))):
                raise ModelError(f"The vocabulary in {tokenizer_json} has gaps in its ids")
            return [word for word, _ in by_id]
    raise ModelError(
        f"No vocab.txt or WordPiece tokenizer.json in {folder}: "
        "only WordPiece (BERT) tokenizers are supported"
    )


def _bert_vocab(folder: Path, vocab_size: int) -> tuple[list[str], list[str], list[int]]:
    """WordPiece vocabulary in llama.cpp's form: word-initial pieces get the '▁' marker,
    '##' continuations lose their prefix, special tokens stay as they are. Padded with
    unused tokens up to the embedding matrix's rows (JinaBERT pads 30522 words to 30528)."""
    words = _vocab_words(folder)
    special: set[str] = set()
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        for added in _read_json(tokenizer_json).get("added_tokens", []):
            if added.get("special"):
                special.add(added["content"])
    else:
        special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    tokens: list[str] = []
    types: list[int] = []
    for word in words:
        if word in special:
            tokens.append(word)
            types.append(gguf.TokenType.CONTROL)
        elif word.startswith("##"):
            tokens.append(word[2:])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append("\u2581" + word)
            types.append(gguf.TokenType.NORMAL)
    if vocab_size > len(tokens):
        for i in range(len(tokens), vocab_size):
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    elif vocab_size and vocab_size < len(tokens):
        raise ModelError(f"{folder}: vocab_size {vocab_size} is smaller than the vocabulary ({len(tokens)})")
    return words, tokens, types


def _token_id(words: list[str], name: str, fallback: int) -> int:
    try:
        return words.index(name)
    except ValueError:
        return fallback


def detect_architecture(folder: Path) -> str:
    """ "bert", "jina-bert-v2" or "jina-bert-v3" for a Hugging Face folder this converter reads."""
    config = _read_json(Path(folder) / "config.json")
    architectures = " ".join(config.get("architectures") or [])
    if _is_jina_v3(config):
        return "jina-bert-v3"
    if "JinaBert" in architectures or config.get("position_embedding_type") == "alibi":
        if config.get("feed_forward_type", "geglu") != "geglu":
            raise ModelError(
                f"{folder}: JinaBERT with feed_forward_type {config.get('feed_forward_type')!r} "
                "is not supported (only the gated GELU of jina-embeddings-v2)"
            )
        return "jina-bert-v2"
    if config.get("model_type") == "bert":
        return "bert"
    raise ModelError(
        f"{folder} holds a {config.get('model_type')!r} model ({architectures or 'no architectures'}); "
        "this converter reads BERT and JinaBERT. Convert other models with llama.cpp's "
        "convert_hf_to_gguf.py and bring the file in with `localsearch models import`."
    )


def convert_hf(folder: Path, out_path: Path, *, name: str | None = None) -> Path:
    """Write an F16 GGUF of the BERT or JinaBERT model in `folder` (atomically); for
    jina-embeddings-v3 also its task adapters, beside it (default_adapter_path)."""
    if detect_architecture(Path(folder)) == "jina-bert-v3":
        return convert_jina_v3(Path(folder), Path(out_path), name=name)[0]
    return _convert(Path(folder), Path(out_path), detect_architecture(Path(folder)), name)


def convert_bert(folder: Path, out_path: Path, *, name: str | None = None) -> Path:
    """Write an F16 GGUF of the BERT model in `folder` to `out_path` (atomically)."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    if config.get("model_type") != "bert":
        raise ModelError(f"{folder} holds a {config.get('model_type')!r} model; this converter reads BERT")
    return _convert(folder, Path(out_path), detect_architecture(folder), name)


def _pooling(folder: Path, config: dict) -> gguf.PoolingType:
    pool_cfg_path = folder / "1_Pooling" / "config.json"
    if pool_cfg_path.is_file():
        pool = _read_json(pool_cfg_path)
        if pool.get("pooling_mode_cls_token"):
            return gguf.PoolingType.CLS
        return gguf.PoolingType.MEAN
    if config.get("emb_pooler") == "cls":
        return gguf.PoolingType.CLS
    return gguf.PoolingType.MEAN


@dataclass(frozen=True)
class _Encoder:
    """The shape of a BERT-family encoder, from its config.json."""

    n_layers: int
    hidden: int
    n_ff: int
    n_heads: int
    n_positions: int
    vocab_size: int


def _encoder(folder: Path, config: dict[str, Any], family: str) -> tuple[_Encoder, Path]:
    """The encoder's shape and its weights file, or a ModelError naming what is missing."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"No model.safetensors in {folder}")
    try:
        shape = _Encoder(
            n_layers=int(config["num_hidden_layers"]),
            hidden=int(config["hidden_size"]),
            n_ff=int(config["intermediate_size"]),
            n_heads=int(config["num_attention_heads"]),
            n_positions=int(config["max_position_embeddings"]),
            vocab_size=int(config.get("vocab_size", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder}/config.json lacks a {family} hyperparameter: {exc}") from exc
    if shape.hidden % shape.n_heads:
        raise ModelError(f"{folder}: hidden_size {shape.hidden} is not a multiple of {shape.n_heads} heads")
    return shape, weights


def _add_encoder_header(
    writer: gguf.GGUFWriter, shape: _Encoder, *, name: str, n_ctx: int, eps: float, pooling: gguf.PoolingType
) -> None:
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_block_count(shape.n_layers)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_heads)
    writer.add_layer_norm_eps(eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)


def _stored(gguf_name: str, data: np.ndarray) -> np.ndarray:
    """F16 for matrices, F32 for vectors and the tensors llama.cpp wants in full precision."""
    return data.astype(np.float16 if data.ndim >= 2 and gguf_name not in _KEEP_F32 else np.float32)


def _write_out(writer: gguf.GGUFWriter) -> None:
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _write_tensors(
    writer: gguf.GGUFWriter,
    weights: Path,
    arch: gguf.MODEL_ARCH,
    n_layers: int,
    source_name: Callable[[str], str | None],
    take: Callable[[str, str, np.ndarray], bool],
) -> None:
    """Every tensor of `weights` under its llama.cpp name, F16 or F32 (_stored).

    source_name: a Hugging Face name as the gguf name map knows it, None for a tensor the
    embedding graph does not use. take(hf name, gguf name, data): checks a tensor, and says
    True when it keeps it itself (jina-embeddings-v3's LoRA parts) rather than have it written.
    A name the map does not know, or a model without its embedding or last layer, is refused."""
    name_map = gguf.get_tensor_name_map(arch, n_layers)
    seen: set[str] = set()
    with safe_open(str(weights), framework="numpy") as tensors:
        for hf_name in tensors.keys():  # noqa: SIM118 (safe_open is not a dict)
            short = source_name(hf_name)
            if short is None:
                continue
            gguf_name = name_map.get_name(short, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ModelError(f"Unexpected tensor {hf_name!r} in {weights}")
            data = tensors.get_tensor(hf_name)
            if take(hf_name, gguf_name, data):
                continue
            writer.add_tensor(gguf_name, _stored(gguf_name, data))
            seen.add(gguf_name)
    if "token_embd.weight" not in seen or f"blk.{n_layers - 1}.ffn_down.weight" not in seen:
        raise ModelError(f"{weights} lacks the embedding or the last layer's tensors")


def _convert(folder: Path, out_path: Path, arch_name: str, name: str | None) -> Path:
    config = _read_json(folder / "config.json")
    shape, weights = _encoder(folder, config, "BERT")
    n_layers, hidden, n_ff = shape.n_layers, shape.hidden, shape.n_ff
    arch = ARCHITECTURES[arch_name]
    jina = arch_name == "jina-bert-v2"

    raw_words, tokens, types = _bert_vocab(folder, shape.vocab_size)
    lowercase = True
    tok_cfg_path = folder / "tokenizer_config.json"
    if tok_cfg_path.is_file():
        lowercase = bool(_read_json(tok_cfg_path).get("do_lower_case", True))

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp_path), arch=gguf.MODEL_ARCH_NAMES[arch])
    try:
        _add_encoder_header(
            writer,
            shape,
            name=name or folder.name,
            n_ctx=shape.n_positions,
            eps=float(config.get("layer_norm_eps", 1e-12)),
            pooling=_pooling(folder, config),
        )
        writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
        writer.add_tokenizer_model("bert")
        writer.add_tokenizer_pre("jina-v2-en")  # llama.cpp's pre-tokenizer for BERT WordPiece
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_bos_token_id(_token_id(raw_words, "[CLS]", 101))
        writer.add_eos_token_id(_token_id(raw_words, "[SEP]", 102))
        writer.add_unk_token_id(_token_id(raw_words, "[UNK]", 100))
        writer.add_sep_token_id(_token_id(raw_words, "[SEP]", 102))
        writer.add_pad_token_id(_token_id(raw_words, "[PAD]", 0))
        writer.add_mask_token_id(_token_id(raw_words, "[MASK]", 103))
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(True)
        writer.add_add_sep_token(False)
        # Written by llama.cpp's converter; the gguf package has no helper for it yet.
        writer.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)

        def bert_name(hf_name: str) -> str | None:
            short = hf_name.removeprefix("bert.")
            return None if short.endswith(_SKIP_SUFFIXES) or short.startswith(_SKIP_PREFIXES) else short

        def check(hf_name: str, gguf_name: str, data: np.ndarray) -> bool:
            if jina and gguf_name.startswith("position_embd"):  # ALiBi: llama.cpp has no use for one
                raise ModelError(f"Unexpected tensor {hf_name!r} in {weights}")
            if jina and gguf_name.endswith("ffn_up.weight") and data.shape != (2 * n_ff, hidden):
                raise ModelError(
                    f"{hf_name} has shape {data.shape}; a gated feed-forward needs {(2 * n_ff, hidden)}"
                )
            return False

        _write_tensors(writer, weights, arch, n_layers, bert_name, check)
        _write_out(writer)
        os.replace(tmp_path, out_path)
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise
    return out_path


# ---------------------------------------------------------------------------------------
# jina-embeddings-v3: XLM-RoBERTa with rotary positions and task LoRA adapters.
#
# The Hugging Face checkpoint keeps every Linear and Embedding weight as a parametrization:
# `<module>.parametrizations.weight.original` (the base weight) plus `...weight.0.lora_A`
# and `...weight.0.lora_B` with a leading task dimension, merged as W + (alpha/rank)·B·A
# for linear layers (A: tasks x rank x in, B: tasks x out x rank) and W + (alpha/rank)·A·B
# for embeddings (A: tasks x rows x rank, B: tasks x rank x dim). llama.cpp runs the base
# as "jina-bert-v3" (BERT's post-norm graph, fused QKV, NeoX-style rotary) and takes each
# task as its own LoRA GGUF: `<tensor>.lora_a` / `.lora_b`, scaled by alpha / rank where
# rank is lora_b's first dimension (src/llama-adapter.h get_scale, src/llama-graph.cpp
# build_lora_mm). For token_embd llama.cpp looks up rows of lora_a and multiplies by a
# non-transposed lora_b (build_inp_embd), so lora_b is stored as B transposed.

JINA_V3_PARAM = ".parametrizations.weight."
_JINA_V3_SKIP_PREFIXES = ("pooler.", "lm_head.", "classifier.")


def _is_jina_v3(config: dict) -> bool:
    architectures = " ".join(config.get("architectures") or [])
    auto_map = " ".join(str(v) for v in (config.get("auto_map") or {}).values())
    return bool(config.get("lora_adaptations")) or "XLMRobertaLoRA" in architectures + " " + auto_map


def _find_in_tree(node: Any, type_name: str) -> dict | None:
    """The first {"type": type_name, ...} in a tokenizer.json normalizer/pre-tokenizer tree."""
    if isinstance(node, dict):
        if node.get("type") == type_name:
            return node
        children = node.get("normalizers") or node.get("pretokenizers") or []
        for child in children:
            found = _find_in_tree(child, type_name)
            if found is not None:
                return found
    return None


@dataclass
class UnigramVocab:
    tokens: list[str]
    scores: list[float]
    types: list[int]
    special: dict[str, int]  # "bos", "eos", ... -> id
    add_space_prefix: bool
    remove_extra_whitespaces: bool
    charsmap: bytes


def _unigram_vocab(folder: Path, vocab_size: int) -> UnigramVocab:
    """XLM-RoBERTa's SentencePiece Unigram vocabulary from tokenizer.json, in the form
    llama.cpp's UGM tokenizer ("t5") reads: pieces with their log-probability scores, in id
    order (tokenizer.json already holds fairseq's order: <s> <pad> </s> <unk> ... <mask>)."""
    import base64

    tok_path = folder / "tokenizer.json"
    if not tok_path.is_file():
        raise ModelError(f"No tokenizer.json in {folder}: jina-embeddings-v3 needs its Unigram tokenizer")
    tok = _read_json(tok_path)
    model = tok.get("model") or {}
    if model.get("type") != "Unigram" or not isinstance(model.get("vocab"), list):
        raise ModelError(f"{tok_path} is not a SentencePiece Unigram tokenizer ({model.get('type')!r})")
    pieces = model["vocab"]
    added = {int(a["id"]): a for a in tok.get("added_tokens", []) if "id" in a}
    n = max(vocab_size, len(pieces), max(added, default=-1) + 1)
    # Ids nobody uses (padding rows of the embedding matrix) as llama.cpp's converter fills them.
    tokens = [f"[PAD{i}]" for i in range(n)]
    scores = [-10000.0] * n
    types = [int(gguf.TokenType.UNUSED)] * n
    unk_id = model.get("unk_id")
    for i, entry in enumerate(pieces):
        piece, score = entry[0], float(entry[1])
        tokens[i], scores[i] = piece, score
        types[i] = int(gguf.TokenType.NORMAL)
    for i, added_token in added.items():
        if i >= len(pieces):
            tokens[i], scores[i] = added_token["content"], 0.0
        special = added_token.get("special", False)
        types[i] = int(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
    if isinstance(unk_id, int) and 0 <= unk_id < n:
        types[unk_id] = int(gguf.TokenType.UNKNOWN)

    tok_cfg_path = folder / "tokenizer_config.json"
    tok_cfg = _read_json(tok_cfg_path) if tok_cfg_path.is_file() else {}

    def token_of(key: str, default: str) -> str:
        value = tok_cfg.get(key, default)
        return value.get("content", default) if isinstance(value, dict) else str(value or default)

    ids = {token: i for i, token in enumerate(tokens)}
    names = {
        "bos": token_of("bos_token", "<s>"),
        "eos": token_of("eos_token", "</s>"),
        "unk": token_of("unk_token", "<unk>"),
        "sep": token_of("sep_token", "</s>"),
        "pad": token_of("pad_token", "<pad>"),
        "cls": token_of("cls_token", "<s>"),
        "mask": token_of("mask_token", "<mask>"),
    }
    special = {role: ids[token] for role, token in names.items() if token in ids}
    for role in ("bos", "eos", "unk"):
        if role not in special:
            raise ModelError(f"{tok_path} has no {names[role]!r} token ({role})")

    metaspace = _find_in_tree(tok.get("pre_tokenizer"), "Metaspace") or {}
    if "prepend_scheme" in metaspace:
        add_prefix = metaspace["prepend_scheme"] in ("always", "first")
    else:
        add_prefix = bool(metaspace.get("add_prefix_space", True))
    precompiled = _find_in_tree(tok.get("normalizer"), "Precompiled") or {}
    charsmap = base64.b64decode(precompiled.get("precompiled_charsmap") or "")
    return UnigramVocab(
        tokens=tokens,
        scores=scores,
        types=types,
        special=special,
        add_space_prefix=add_prefix,
        # What llama.cpp's converter takes for it (the tokenizer's clean_up_tokenization_spaces).
        remove_extra_whitespaces=bool(tok_cfg.get("clean_up_tokenization_spaces", True)),
        charsmap=charsmap,
    )


@dataclass
class _Lora:
    """One weight's LoRA pair across all tasks, as stored by Hugging Face."""

    a: np.ndarray | None = None
    b: np.ndarray | None = None


def _jina_v3_short_name(hf_name: str) -> str:
    return hf_name.removeprefix("roberta.")


def _adapter_tensors(loras: dict[str, _Lora], task: int, alpha: float, n_rows: int) -> dict[str, np.ndarray]:
    """The GGUF LoRA tensors of task number `task`.

    llama.cpp applies no LoRA to the token-type embedding (the graph adds its row 0 as it
    is), so that row's task delta, a constant vector c added to every token, is folded into
    the token_embd adapter as one more rank: lora_a gains a column of ones and lora_b a row
    c·(rank+1)/alpha, and the existing rows are rescaled by (rank+1)/rank so that
    alpha/(rank+1) still gives them alpha/rank. The sum is exactly the merged weights'."""
    out: dict[str, np.ndarray] = {}
    fold: np.ndarray | None = None
    types = loras.get("token_types.weight")
    if types is not None and types.a is not None and types.b is not None:
        # Row 0 of A·B, scaled by alpha / rank (embeddings: A is tasks x rows x rank).
        fold = (types.a[task][0] @ types.b[task]) * (alpha / types.a.shape[2])
        if not np.any(fold):
            fold = None
    for name, pair in loras.items():
        if name == "token_types.weight":
            continue
        assert pair.a is not None and pair.b is not None
        a, b = pair.a[task].astype(np.float32), pair.b[task].astype(np.float32)
        if name == "token_embd.weight":
            a, b = a, b.T  # rows x rank and dim x rank (llama.cpp's non-transposed B)
            if fold is not None:
                rank = a.shape[1]
                a = np.concatenate([a, np.ones((a.shape[0], 1), np.float32)], axis=1)
                b = np.concatenate([b * ((rank + 1) / rank), fold[:, None] * ((rank + 1) / alpha)], axis=1)
                fold = None
        out[f"{name}.lora_a"] = np.ascontiguousarray(a, dtype=np.float32)
        out[f"{name}.lora_b"] = np.ascontiguousarray(b, dtype=np.float32)
    if fold is not None:  # token types adapted but words not: a rank-1 adapter of ones
        out["token_embd.weight.lora_a"] = np.ones((n_rows, 1), np.float32)
        out["token_embd.weight.lora_b"] = (fold[:, None] / alpha).astype(np.float32)
    return out


def default_adapter_path(model_path: Path, task: str) -> Path:
    """<name>.lora-<task>.gguf beside <name>.<TYPE>.gguf: one set of adapters serves every
    weight type of the model (llama.cpp adds the LoRA product to quantized weights too)."""
    stem = model_path.name.removesuffix(".gguf")
    base, _, last = stem.rpartition(".")
    if base and WEIGHT_TYPE.match(last):
        stem = base
    return model_path.with_name(f"{stem}.lora-{task}.gguf")


def convert_jina_v3(
    folder: Path,
    out_path: Path,
    *,
    name: str | None = None,
    adapter_path: Callable[[str], Path] | None = None,
) -> tuple[Path, dict[str, Path]]:
    """Write the jina-embeddings-v3 base model as an F16 "jina-bert-v3" GGUF and one LoRA
    adapter GGUF per task (task name, prompt prefix and alpha in its metadata). All files
    appear together or not at all. Returns (model path, {task: adapter path})."""
    folder, out_path = Path(folder), Path(out_path)
    config = _read_json(folder / "config.json")
    shape, weights = _encoder(folder, config, "jina-embeddings-v3")
    n_layers, hidden = shape.n_layers, shape.hidden
    try:
        tasks = [str(t) for t in config["lora_adaptations"]]
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{folder}/config.json lacks a jina-embeddings-v3 hyperparameter: {exc}") from exc
    if config.get("position_embedding_type", "rotary") != "rotary":
        raise ModelError(f"{folder}: position_embedding_type must be rotary for jina-embeddings-v3")
    alpha = float(config.get("lora_alpha") or 1.0)
    instructions = config.get("task_instructions") or {}
    # XLM-RoBERTa counts positions from pad_token_id + 1: 8194 positions are 8192 tokens
    # (as llama.cpp's converter reads them).
    pad_id = config.get("pad_token_id")
    n_ctx = shape.n_positions - (int(pad_id) + 1 if pad_id is not None else 0)
    vocab = _unigram_vocab(folder, shape.vocab_size)

    arch = gguf.MODEL_ARCH.JINA_BERT_V3
    arch_name = gguf.MODEL_ARCH_NAMES[arch]
    targets = {
        task: (adapter_path(task) if adapter_path else default_adapter_path(out_path, task)) for task in tasks
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partials = [out_path.with_name(out_path.name + ".partial")]
    partials += [p.with_name(p.name + ".partial") for p in targets.values()]
    writers: list[gguf.GGUFWriter] = []
    try:
        writer = gguf.GGUFWriter(str(partials[0]), arch=arch_name)
        writers.append(writer)
        _add_encoder_header(
            writer,
            shape,
            name=name or folder.name,
            n_ctx=n_ctx,
            eps=float(config.get("layer_norm_eps", 1e-5)),
            pooling=_pooling(folder, config),
        )
        writer.add_rope_freq_base(float(config.get("rotary_emb_base", 10000.0)))
        writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
        writer.add_tokenizer_model("t5")  # llama.cpp's UGM (SentencePiece Unigram) tokenizer
        writer.add_tokenizer_pre("default")
        writer.add_token_list(vocab.tokens)
        writer.add_token_scores(vocab.scores)
        writer.add_token_types(vocab.types)
        writer.add_add_space_prefix(vocab.add_space_prefix)
        writer.add_remove_extra_whitespaces(vocab.remove_extra_whitespaces)
        if vocab.charsmap:
            writer.add_precompiled_charsmap(vocab.charsmap)
        setters = {
            "bos": writer.add_bos_token_id,
            "eos": writer.add_eos_token_id,
            "unk": writer.add_unk_token_id,
            "sep": writer.add_sep_token_id,
            "pad": writer.add_pad_token_id,
            "mask": writer.add_mask_token_id,
        }
        for role, token_id in vocab.special.items():
            if role in setters:  # <s> doubles as CLS: llama.cpp has no key for it
                setters[role](token_id)
        writer.add_add_bos_token(True)  # <s> text </s>
        writer.add_add_eos_token(True)

        loras: dict[str, _Lora] = {}
        n_rows = 0

        def v3_name(hf_name: str) -> str | None:
            short = _jina_v3_short_name(hf_name)
            if short.startswith(_JINA_V3_SKIP_PREFIXES) or short.endswith("position_ids"):
                return None
            if JINA_V3_PARAM not in short:
                return short
            module, _, part = short.partition(JINA_V3_PARAM)
            if part not in ("original", "0.lora_A", "0.lora_B"):
                raise ModelError(f"Unexpected tensor {hf_name!r} in {weights}")
            return module + ".weight"

        def take_lora(hf_name: str, gguf_name: str, data: np.ndarray) -> bool:
            nonlocal n_rows
            if hf_name.endswith((JINA_V3_PARAM + "0.lora_A", JINA_V3_PARAM + "0.lora_B")):
                if data.ndim != 3 or data.shape[0] != len(tasks):
                    raise ModelError(
                        f"{hf_name} has shape {data.shape}; expected one LoRA matrix per task ({len(tasks)})"
                    )
                setattr(loras.setdefault(gguf_name, _Lora()), hf_name[-1].lower(), data)
                return True
            if gguf_name.endswith("attn_qkv.weight") and data.shape != (3 * hidden, hidden):
                raise ModelError(f"{hf_name} has shape {data.shape}; fused QKV needs {(3 * hidden, hidden)}")
            if gguf_name == "token_embd.weight":
                n_rows = data.shape[0]
            return False

        _write_tensors(writer, weights, arch, n_layers, v3_name, take_lora)
        incomplete = sorted(n for n, pair in loras.items() if pair.a is None or pair.b is None)
        if incomplete or not loras:
            raise ModelError(
                f"{weights} has no complete task LoRA weights ({', '.join(incomplete) or 'none'})"
            )
        _write_out(writer)

        for index, (task, partial) in enumerate(zip(tasks, partials[1:], strict=True)):
            adapter = gguf.GGUFWriter(str(partial), arch=arch_name)
            writers.append(adapter)
            adapter.add_type(gguf.GGUFType.ADAPTER)
            adapter.add_name(f"{name or folder.name} ({task})")
            adapter.add_string(gguf.Keys.Adapter.TYPE, "lora")
            adapter.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
            adapter.add_string(gguf.Keys.Adapter.LORA_TASK_NAME, task)
            adapter.add_string(gguf.Keys.Adapter.LORA_PROMPT_PREFIX, str(instructions.get(task, "")))
            for tensor_name, data in _adapter_tensors(loras, index, alpha, n_rows).items():
                adapter.add_tensor(tensor_name, data)
            adapter.write_header_to_file()
            adapter.write_kv_data_to_file()
            adapter.write_tensors_to_file()
            adapter.close()
        # The adapters first, the model last: the model file is what makes it installed.
        _publish_together(
            [*zip(partials[1:], (targets[t] for t in tasks), strict=True), (partials[0], out_path)]
        )
    except BaseException:
        for w in writers:
            w.close()
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    return out_path, targets


def _publish_together(moves: list[tuple[Path, Path]]) -> None:
    """Rename each finished (partial, target) into place, all or none. Targets already
    there are set aside first, the last target (the file that makes the set usable) before
    any other; a failure puts every one back. A crash in between leaves that last target
    absent, never present with some of its companions missing; what was set aside stays
    on disk as "<name>.old" until the next run succeeds."""
    aside = [(target, target.with_name(target.name + ".old")) for _, target in reversed(moves)]
    set_aside: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for target, old in aside:
            if target.exists():
                os.replace(target, old)
                set_aside.append((target, old))
        for partial, target in moves:
            os.replace(partial, target)
            placed.append(target)
    except BaseException:
        for target in placed:
            target.unlink(missing_ok=True)
        for target, old in reversed(set_aside):
            os.replace(old, target)
        raise
    for _, old in set_aside:
        old.unlink(missing_ok=True)
