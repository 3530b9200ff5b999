"""Dense output heads: a linear layer applied to a model's pooled vector.

stella_en_1.5B_v5 pools Qwen2's 1536-dimension hidden state and projects it with one of
several trained heads to 256 ... 8192 dimensions (its Matryoshka sizes). Each head is a
sentence-transformers Dense module in a folder `2_Dense_<dims>/`:

  config.json        {"in_features": 1536, "out_features": 1024, "bias": true,
                      "activation_function": "torch.nn.modules.linear.Identity"}
  model.safetensors  and/or pytorch_model.bin: `linear.weight` [out, in], `linear.bias` [out]

Sources: huggingface.co/NovaSearch/stella_en_1.5B_v5 (tree at eac2deb: folders 2_Dense_256,
_768, _1024, _2048, _4096, _6144, _8192; 2_Dense_2048 holds config.json, model.safetensors and
pytorch_model.bin, 12.6 MB each, whose pickle imports are collections.OrderedDict,
torch.FloatStorage and torch._utils._rebuild_tensor_v2; 2_Dense_*/config.json as above);
candle's stella_en_v5 model (huggingface/candle: the head is `linear` in
2_Dense_<dims>/model.safetensors, applied to the mean-pooled state before normalization).

Neither reader here imports a library: the safetensors layout is a few lines (an 8-byte
little-endian header length, a JSON header of dtype / shape / data_offsets, then the raw
data), reading it here keeps the `safetensors` package behind convert.py (test_layering) and
reads BF16, which its NumPy API cannot. A PyTorch .bin is a zip holding a pickle: it is
read with an unpickler that resolves only the few names a saved state dict uses and
refuses every other, so a hostile file can never run code.
"""

from __future__ import annotations

import collections
import io
import json
import math
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from localsearch.errors import ModelError

WEIGHT, BIAS = "linear.weight", "linear.bias"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # preferred first: no pickle
# The largest stella head (1536 -> 8192, float32) is 50 MB; anything far larger is not a head.
MAX_HEAD_BYTES = 1 << 30
MAX_PICKLE_BYTES = 1 << 20  # a state dict's pickle is a few hundred bytes; the data lies beside it

# safetensors dtype names (little-endian by definition); BF16 is widened below.
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bf16"}
_TORCH_STORAGES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
}


@dataclass(frozen=True)
class DenseHead:
    """y = W·x + b on pooled rows (not normalized: the engine normalizes after)."""

    weight: np.ndarray  # float32 [out_features, in_features]
    bias: np.ndarray | None  # float32 [out_features]
    source: Path

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def apply(self, pooled: np.ndarray) -> np.ndarray:
        out = np.asarray(pooled, dtype=np.float32) @ self.weight.T
        if self.bias is not None:
            out += self.bias
        return out.astype(np.float32, copy=False)


def _bad(path: Path, why: str) -> ModelError:
    return ModelError(f"{path} is not a usable output head: {why}")


def load_head(path: Path | str, *, in_features: int | None = None) -> DenseHead:
    """A head from a sentence-transformers Dense folder, or from its weights file (.safetensors
    or .bin) with its config.json beside it (named config.json, or <stem>.json as installed
    in the models folder). in_features: the model's hidden size, checked against the head."""
    path = Path(path).expanduser()
    weights, config_path = _locate(path)
    config = _read_config(config_path) if config_path is not None else {}
    if weights.stat().st_size > MAX_HEAD_BYTES:
        raise _bad(weights, f"{weights.stat().st_size:,} bytes is far more than a head's weights")
    if weights.suffix == ".safetensors":
        tensors = read_safetensors(weights)
    elif weights.suffix == ".bin":
        tensors = read_torch_zip(weights)
    else:
        raise _bad(weights, "expected a .safetensors or a PyTorch .bin file")
    return _assemble(weights, tensors, config, in_features)


def _locate(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                config = path / "config.json"
                return path / name, config if config.is_file() else None
        raise _bad(path, f"the folder holds neither {' nor '.join(WEIGHT_FILES)}")
    if not path.is_file():
        raise ModelError(f"Output head not found: {path}")
    for config in (path.with_suffix(".json"), path.parent / "config.json"):
        if config.is_file() and (config.name != "config.json" or path.name in WEIGHT_FILES):
            return path, config
    return path, None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"unreadable config ({exc})") from exc
    if not isinstance(config, dict):
        raise _bad(path, "the config is not a JSON object")
    activation = str(config.get("activation_function", "torch.nn.modules.linear.Identity"))
    if not activation.endswith(".Identity"):
        # Only a purely linear head is applied here; a tanh head (Dense's default) would need more.
        raise _bad(path, f"activation {activation!r} is not supported (only Identity)")
    return config


def _assemble(
    path: Path, tensors: dict[str, np.ndarray], config: dict[str, Any], in_features: int | None
) -> DenseHead:
    if WEIGHT not in tensors:
        raise _bad(path, f"no tensor {WEIGHT!r} (it has {', '.join(sorted(tensors)) or 'none'})")
    weight = tensors[WEIGHT]
    if weight.ndim != 2 or 0 in weight.shape:
        raise _bad(path, f"{WEIGHT} has shape {list(weight.shape)}, not [out_features, in_features]")
    out_n, in_n = (int(n) for n in weight.shape)
    bias = tensors.get(BIAS)
    if bias is not None and bias.shape != (out_n,):
        raise _bad(path, f"{BIAS} has shape {list(bias.shape)}; the weight gives {out_n} outputs")
    for key, actual in (("in_features", in_n), ("out_features", out_n)):
        if key in config and config[key] != actual:
            raise _bad(path, f"its config says {key} {config[key]}, its weight has {actual}")
    if config.get("bias") is True and bias is None:
        raise _bad(path, f"its config declares a bias but there is no {BIAS}")
    if in_features is not None and in_n != in_features:
        raise _bad(path, f"it takes {in_n}-dimension vectors; the model gives {in_features}")
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    if not np.isfinite(weight).all() or (bias is not None and not np.isfinite(bias).all()):
        raise _bad(path, "its weights hold NaN or infinite values")
    return DenseHead(weight, bias, path)


def _widen_bf16(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: shift the bits into place."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


# -- safetensors -------------------------------------------------------------------


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every float tensor of a safetensors file, each range checked against the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(path, str(exc)) from exc
    if len(data) < 8:
        raise _bad(path, "too short for a safetensors header (truncated?)")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > len(data) - 8:
        raise _bad(path, f"its header claims {header_size:,} bytes; the file has {len(data):,} (truncated?)")
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"its safetensors header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _bad(path, "its safetensors header is not a JSON object")
    body = memoryview(data)[8 + header_size :]
    tensors: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype_name, shape, (begin, end) = meta["dtype"], meta["shape"], meta["data_offsets"]
        except (TypeError, KeyError, ValueError) as exc:
            raise _bad(path, f"tensor {name!r} has a malformed entry") from exc
        if dtype_name not in _SAFETENSORS_DTYPES:
            continue  # integer tensors are no part of a linear head
        if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise _bad(path, f"tensor {name!r} has a malformed shape {shape!r}")
        dtype = _SAFETENSORS_DTYPES[dtype_name]
        itemsize = 2 if dtype == "bf16" else np.dtype(dtype).itemsize
        count = math.prod(shape)
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= len(body)):
            raise _bad(path, f"tensor {name!r} lies outside the file (truncated?)")
        if end - begin != count * itemsize:
            raise _bad(path, f"tensor {name!r} has {end - begin} bytes for shape {shape} of {dtype_name}")
        raw = np.frombuffer(body, dtype="<u2" if dtype == "bf16" else dtype, count=count, offset=begin)
        tensors[name] = (_widen_bf16(raw) if dtype == "bf16" else raw).reshape(shape)
    return tensors


# -- PyTorch zip checkpoints (torch.save since 1.6), without torch -------------------


class _Refused(pickle.UnpicklingError):
    pass


@dataclass(frozen=True)
class _StorageType:
    """Stands in for torch.FloatStorage & co. in the pickle: it only names a dtype."""

    name: str


@dataclass(frozen=True)
class _Storage:
    values: np.ndarray  # one-dimensional


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2's arguments, rebuilt as a NumPy array (a copy)."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    if not (
        isinstance(storage_offset, int)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(n, int) and n >= 0 for n in (storage_offset, *size, *stride))
    ):
        raise pickle.UnpicklingError("a tensor with a malformed size, stride or offset")
    values = storage.values
    if 0 in size:
        return np.zeros(size, dtype=values.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= len(values):
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage (truncated?)")
    view = np.lib.stride_tricks.as_strided(
        values[storage_offset:], shape=size, strides=[s * values.itemsize for s in stride], writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data: object, requires_grad: object = False, backward_hooks: object = None) -> object:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only what a saved state dict names; any other global is refused before it
    can be called (the "restricting globals" recipe of Python's pickle documentation)."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, big_endian: bool) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._order = ">" if big_endian else "<"
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(name)
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        # ("storage", storage type, key, location, element count): torch/serialization.py.
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise pickle.UnpicklingError(f"an unknown persistent id {str(pid)[:80]}")
        _, kind, key, _location, numel = pid
        if not (isinstance(kind, _StorageType) and isinstance(key, str) and isinstance(numel, int)):
            raise pickle.UnpicklingError("a malformed storage reference")
        if key in self._storages:
            return self._storages[key]
        code = _TORCH_STORAGES[kind.name]
        itemsize = 2 if code == "bf16" else int(code[1])
        member = f"{self._prefix}data/{key}"
        try:
            info = self._archive.getinfo(member)
        except KeyError:
            raise pickle.UnpicklingError(f"storage {key} is missing from the archive (truncated?)") from None
        wanted = numel * itemsize
        if numel < 0 or wanted > MAX_HEAD_BYTES or info.file_size < wanted:
            raise pickle.UnpicklingError(f"storage {key} holds {info.file_size} bytes, not {wanted}")
        raw = self._archive.read(member)[:wanted]
        if code == "bf16":
            values = _widen_bf16(np.frombuffer(raw, dtype=f"{self._order}u2"))
        else:
            values = np.frombuffer(raw, dtype=f"{self._order}{code}")
        self._storages[key] = _Storage(values)
        return self._storages[key]


def read_torch_zip(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a state dict saved by torch.save (zip format), read without torch and
    without running anything the pickle asks for beyond rebuilding tensors."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _bad(path, "not a zip archive: a PyTorch file older than 1.6 or not PyTorch at all") from None
    except OSError as exc:
        raise _bad(path, str(exc)) from exc
    with archive:
        pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise _bad(path, "not a PyTorch checkpoint (no single data.pkl in the archive)")
        prefix = pickles[0][: -len("data.pkl")]
        try:
            if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
                raise _bad(path, "its pickle is far larger than a state dict's")
            big_endian = False
            if f"{prefix}byteorder" in archive.namelist():
                big_endian = archive.read(f"{prefix}byteorder").strip() == b"big"
            data = archive.read(pickles[0])
            state = _StateDictUnpickler(data, archive, prefix, big_endian).load()
        except _Refused as exc:
            raise _bad(
                path, f"its pickle asks for {exc}, which a weights file never needs: refused, nothing was run"
            ) from None
        except ModelError:
            raise
        except Exception as exc:  # truncated or corrupt: zlib, EOF, struct, pickle errors alike
            raise _bad(path, f"unreadable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise _bad(path, f"it holds a {type(state).__name__}, not a state dict")
    return {str(k): v for k, v in state.items() if isinstance(v, np.ndarray)}
