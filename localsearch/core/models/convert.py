"""Hugging Face BERT folder (safetensors + config + vocab) to GGUF, without PyTorch.

Writes the metadata keys and tensor names llama.cpp's BERT loader reads (the layout
llama.cpp's own converter produces). Tensor names come from the gguf library's map.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors import safe_open

import gguf
from localsearch.errors import ModelError

# 2-D matrices that stay F32 in the F16 file, as llama.cpp's converter keeps them.
_KEEP_F32 = {"position_embd.weight", "token_types.weight"}
# Hugging Face tensors that the BERT embedding graph does not use.
_SKIP_SUFFIXES = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"Cannot read {path.name} in {path.parent}: {exc}") from exc


def _bert_vocab(folder: Path) -> tuple[list[str], list[str], list[int]]:
    """WordPiece vocabulary in llama.cpp's form: word-initial pieces get the '▁' marker,
    '##' continuations lose their prefix, special tokens stay as they are."""
    vocab_path = folder / "vocab.txt"
    if not vocab_path.is_file():
        raise ModelError(f"No vocab.txt in {folder}: only WordPiece (BERT) tokenizers are supported")
    words = vocab_path.read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
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
    return words, tokens, types


def _token_id(words: list[str], name: str, fallback: int) -> int:
    try:
        return words.index(name)
    except ValueError:
        return fallback


def convert_bert(folder: Path, out_path: Path, *, name: str | None = None) -> Path:
    """Write an F16 GGUF of the BERT model in `folder` to `out_path` (atomically)."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    if config.get("model_type") != "bert":
        raise ModelError(f"{folder} holds a {config.get('model_type')!r} model; this converter reads BERT")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"No model.safetensors in {folder}")

    raw_words, tokens, types = _bert_vocab(folder)
    lowercase = True
    tok_cfg_path = folder / "tokenizer_config.json"
    if tok_cfg_path.is_file():
        lowercase = bool(_read_json(tok_cfg_path).get("do_lower_case", True))
    pooling = gguf.PoolingType.MEAN
    pool_cfg_path = folder / "1_Pooling" / "config.json"
    if pool_cfg_path.is_file() and _read_json(pool_cfg_path).get("pooling_mode_cls_token"):
        pooling = gguf.PoolingType.CLS

    n_layers = int(config["num_hidden_layers"])
    tmp_path = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp_path), arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or folder.name)
    writer.add_block_count(n_layers)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)

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

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    with safe_open(str(weights), framework="numpy") as tensors:
        for hf_name in tensors.keys():  # noqa: SIM118 (safe_open is not a dict)
            if hf_name.endswith(_SKIP_SUFFIXES):
                continue
            gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ModelError(f"Unexpected tensor {hf_name!r} in {weights}")
            data = tensors.get_tensor(hf_name)
            if data.ndim >= 2 and gguf_name not in _KEEP_F32:
                data = data.astype(np.float16)
            else:
                data = data.astype(np.float32)
            writer.add_tensor(gguf_name, data)

    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp_path, out_path)
    return out_path
