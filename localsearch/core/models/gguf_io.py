"""GGUF files as they are: checked, described and sliced, before llama.cpp trusts them.

With convert.py, the only modules that import the `gguf` library. llama.cpp trusts a file's
offsets and can abort or read out of bounds on a bad one, so every file is walked here
first (check_gguf_header), then described (inspect_gguf, inspect_adapter); slice_gguf
keeps the first L layers of a model (the layer half of 2D Matryoshka).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
from localsearch.errors import ModelError

# Every architecture name this gguf library (llama.cpp's own Python package) knows.
KNOWN_ARCHITECTURES = frozenset(gguf.MODEL_ARCH_NAMES.values())
# Architectures llama.cpp can run as text embedding encoders (pooled, non-causal).
ENCODER_ARCHITECTURES = frozenset(
    {"bert", "jina-bert-v2", "jina-bert-v3", "nomic-bert", "nomic-bert-moe", "modern-bert", "neo-bert"}
)
GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)


@dataclass
class AdapterInfo:
    path: Path
    architecture: str
    task: str
    prompt_prefix: str
    alpha: float
    name: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "task": self.task,
            "prompt_prefix": self.prompt_prefix,
            "alpha": self.alpha,
            "architecture": self.architecture,
        }


# ---------------------------------------------------------------------------------------
# The header walk: every count, length and offset a GGUF declares, checked against the
# bytes the file really has, before anything (gguf's reader, llama.cpp) trusts them.

# GGUF value types (gguf.GGUFValueType) and the bytes one scalar of each takes.
_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_UINT32 = 4
# Longer than any real key or value (chat templates run to tens of kilobytes): a length
# above this is damage or an attack, refused before a byte of it is read.
MAX_GGUF_STRING = 16 << 20
MAX_GGUF_DIMS = 4  # GGML_MAX_DIMS
_DEFAULT_ALIGNMENT = 32


@dataclass
class GGUFHeader:
    """What the header walk found: enough to refuse a file before llama.cpp opens it."""

    version: int
    size: int
    architecture: str
    general_type: str
    tensor_count: int
    data_offset: int


class _HeaderCursor:
    def __init__(self, data: bytes | memoryview, label: str) -> None:
        self.data = data
        self.size = len(data)
        self.pos = 0
        self.label = label

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.label} is damaged or hostile: {what} (at byte {self.pos:,})")

    def need(self, count: int, what: str) -> None:
        if count < 0 or self.pos + count > self.size:
            raise self.fail(f"{what} needs {count:,} bytes but only {self.size - self.pos:,} remain")

    def unpack(self, fmt: str, what: str) -> int:
        width = struct.calcsize(fmt)
        self.need(width, what)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += width
        return int(value)

    def string(self, what: str, *, keep: bool = True) -> str:
        length = self.unpack("<Q", f"the length of {what}")
        if length > MAX_GGUF_STRING:
            raise self.fail(f"{what} declares {length:,} bytes (the limit is {MAX_GGUF_STRING:,})")
        self.need(length, what)
        start, self.pos = self.pos, self.pos + length
        if not keep:
            return ""
        try:
            return bytes(self.data[start : self.pos]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not UTF-8 text") from exc

    def new_name(self, kind: str, seen: set[str]) -> str:
        """The name of a key or tensor, which may appear once in a file."""
        name = self.string(f"a {kind} name")
        if name in seen:
            raise self.fail(f"the {kind} {name!r} appears twice")
        seen.add(name)
        return name

    def skip_value(self, value_type: int, what: str, *, in_array: bool = False) -> None:
        if value_type in _SCALAR_BYTES:
            self.need(_SCALAR_BYTES[value_type], what)
            self.pos += _SCALAR_BYTES[value_type]
        elif value_type == _STRING:
            self.string(what, keep=False)
        elif value_type == _ARRAY and not in_array:
            item_type = self.unpack("<I", f"the item type of {what}")
            count = self.unpack("<Q", f"the item count of {what}")
            if item_type in _SCALAR_BYTES:
                # Fixed-size items: one bounds check for the lot, however many are declared.
                total = count * _SCALAR_BYTES[item_type]
                self.need(total, f"{what} ({count:,} items)")
                self.pos += total
            elif item_type == _STRING:
                # Each string is at least its 8-byte length: an absurd count fails here,
                # before a loop of that many steps starts.
                self.need(8 * count, f"{what} ({count:,} strings)")
                for _ in range(count):
                    self.string(what, keep=False)
            else:
                raise self.fail(f"{what} is an array of unsupported type {item_type}")
        else:
            raise self.fail(f"{what} has unknown value type {value_type}")


def check_gguf_header(path: Path, label: str | None = None) -> GGUFHeader:
    """Walk a GGUF file's header with every declared count, length and offset checked
    against the file's real size: magic, version, keys and values, tensor infos (names,
    dimensions, types, data inside the file and aligned), the architecture named and known
    to llama.cpp. Costs one pass over the header (a few milliseconds for a 30,000-token
    vocabulary). Raises ModelError with the reason; llama.cpp never sees a file that fails."""
    import mmap

    path = Path(path)
    label = label or path.name
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            if size < 24 or head[:4] != GGUF_MAGIC:
                raise ModelError(f"{label} is not a GGUF file (it does not start with the GGUF magic)")
            version = struct.unpack("<I", head[4:8])[0]
            if version not in GGUF_VERSIONS:
                swapped = struct.unpack(">I", head[4:8])[0]
                detail = " (a big-endian file)" if swapped in GGUF_VERSIONS else ""
                raise ModelError(
                    f"{label} is GGUF version {version}{detail}; llama.cpp reads versions 2 and 3"
                )
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    return _walk_header(_HeaderCursor(view, label), version, size)
                finally:
                    view.release()
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc}") from exc


def _walk_header(cursor: _HeaderCursor, version: int, size: int) -> GGUFHeader:
    cursor.pos = 8
    tensor_count = cursor.unpack("<Q", "the tensor count")
    kv_count = cursor.unpack("<Q", "the key count")
    # The smallest key/value takes 13 bytes, the smallest tensor info 24.
    cursor.need(13 * kv_count + 24 * tensor_count, f"{kv_count:,} keys and {tensor_count:,} tensors")
    architecture = general_type = ""
    alignment = _DEFAULT_ALIGNMENT
    seen_keys: set[str] = set()
    for _ in range(kv_count):
        key = cursor.new_name("key", seen_keys)
        value_type = cursor.unpack("<I", f"the type of {key}")
        if key in ("general.architecture", "general.type") and value_type == _STRING:
            value = cursor.string(key)
            if key == "general.architecture":
                architecture = value
            else:
                general_type = value
        elif key == "general.alignment":
            if value_type != _UINT32:
                raise cursor.fail("general.alignment is not a 32-bit unsigned integer")
            alignment = cursor.unpack("<I", key)
            if alignment == 0 or alignment & (alignment - 1):
                raise cursor.fail(f"general.alignment {alignment} is not a power of two")
        else:
            cursor.skip_value(value_type, key)
    tensors: list[tuple[str, int, int]] = []  # name, offset, bytes
    names: set[str] = set()
    for _ in range(tensor_count):
        name = cursor.new_name("tensor", names)
        n_dims = cursor.unpack("<I", f"the dimension count of {name}")
        if n_dims > MAX_GGUF_DIMS:
            raise cursor.fail(f"tensor {name} declares {n_dims} dimensions (at most {MAX_GGUF_DIMS})")
        dims = [cursor.unpack("<Q", f"a dimension of {name}") for _ in range(n_dims)]
        type_id = cursor.unpack("<I", f"the type of {name}")
        offset = cursor.unpack("<Q", f"the data offset of {name}")
        try:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)]
        except (ValueError, KeyError):
            raise cursor.fail(f"tensor {name} has unknown weight type {type_id}") from None
        elements = 1
        for dim in dims:
            elements *= dim
        if elements >= 1 << 62:
            raise cursor.fail(f"tensor {name} declares {elements:,} elements")
        if dims and dims[0] % block:
            raise cursor.fail(f"tensor {name}'s rows ({dims[0]}) are not whole blocks of {block}")
        if offset % alignment:
            raise cursor.fail(f"tensor {name}'s data offset {offset:,} is not aligned to {alignment}")
        tensors.append((name, offset, elements // block * type_size))
    data_offset = cursor.pos + (-cursor.pos % alignment)
    for name, offset, nbytes in tensors:
        end = data_offset + offset + nbytes
        if end > size:
            raise ModelError(
                f"{cursor.label} is truncated or damaged: tensor {name} ends at byte {end:,} "
                f"but the file has {size:,} bytes"
            )
    if not architecture:
        raise ModelError(f"{cursor.label} has no general.architecture")
    if architecture not in KNOWN_ARCHITECTURES:
        raise ModelError(
            f"{cursor.label} is a {architecture!r} model, an architecture llama.cpp does not support"
        )
    return GGUFHeader(version, size, architecture, general_type, tensor_count, data_offset)


def _open_gguf(path: Path, label: str) -> tuple[gguf.GGUFReader, int, int]:
    """The header walked and checked first (check_gguf_header), then gguf's reader:
    (reader, file size, version). `label` names the file in messages."""
    header = check_gguf_header(path, label)
    size, version = header.size, header.version
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, IndexError, KeyError, OverflowError, struct.error, MemoryError, OSError) as exc:
        raise ModelError(f"{label} is damaged or truncated: {exc}") from exc
    return reader, size, version


def inspect_adapter(path: Path) -> AdapterInfo:
    """Validate a LoRA adapter GGUF (llama.cpp's own checks, before it sees the file) and
    read its task metadata. Raises ModelError with the reason."""
    path = Path(path)
    reader, size, _ = _open_gguf(path, f"Adapter {path.name}")
    _check_tensor_bounds(reader, path, size)
    if _scalar(reader, "general.type") != "adapter" or _scalar(reader, gguf.Keys.Adapter.TYPE) != "lora":
        raise ModelError(f"{path.name} is not a LoRA adapter (general.type / adapter.type)")
    task = _scalar(reader, gguf.Keys.Adapter.LORA_TASK_NAME)
    if not isinstance(task, str) or not task:
        raise ModelError(f"Adapter {path.name} names no task ({gguf.Keys.Adapter.LORA_TASK_NAME})")
    names = [t.name for t in reader.tensors]
    if not names or any(not n.endswith((".lora_a", ".lora_b")) for n in names):
        raise ModelError(f"Adapter {path.name} holds no LoRA tensors or unexpected ones")
    return AdapterInfo(
        path=path,
        architecture=str(_scalar(reader, "general.architecture", "") or ""),
        task=task,
        prompt_prefix=str(_scalar(reader, gguf.Keys.Adapter.LORA_PROMPT_PREFIX, "") or ""),
        alpha=float(_scalar(reader, gguf.Keys.Adapter.LORA_ALPHA, 0.0) or 0.0),
        name=str(_scalar(reader, "general.name", "") or ""),
    )


# ---------------------------------------------------------------------------------------
# Inspection: everything llama.cpp will trust, checked first.


@dataclass
class GGUFInfo:
    path: Path
    version: int
    architecture: str
    name: str
    file_type: str  # "F16", "Q8_0", ... (general.file_type), "" when absent
    block_count: int
    embedding_length: int
    context_length: int
    pooling: str
    tensor_count: int
    size: int
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "version": self.version,
            "architecture": self.architecture,
            "name": self.name,
            "file_type": self.file_type,
            "block_count": self.block_count,
            "embedding_length": self.embedding_length,
            "context_length": self.context_length,
            "pooling": self.pooling,
            "tensor_count": self.tensor_count,
            "size": self.size,
        }


def file_type_name(value: int) -> str:
    """general.file_type as the usual short name: 1 -> "F16", 7 -> "Q8_0"."""
    try:
        name = gguf.LlamaFileType(value).name
    except ValueError:
        return f"TYPE{value}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _scalar(reader: gguf.GGUFReader, key: str, default: Any = None) -> Any:
    found = reader.fields.get(key)
    if found is None:
        return default
    try:
        return found.contents()
    except (IndexError, ValueError, UnicodeDecodeError):
        return default


def _check_tensor_bounds(reader: gguf.GGUFReader, path: Path, size: int) -> None:
    if not reader.tensors:
        raise ModelError(f"{path.name} holds no tensors")
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if tensor.data_offset < reader.data_offset or end > size:
            raise ModelError(
                f"{path.name} is truncated or damaged: tensor {tensor.name} ends at byte {end:,} "
                f"but the file has {size:,} bytes"
            )
        if tensor.data.nbytes != tensor.n_bytes:
            raise ModelError(f"{path.name} is truncated or damaged: tensor {tensor.name} is short")


def inspect_gguf(path: Path, *, require_encoder: bool = False) -> GGUFInfo:
    """Validate a GGUF file (magic, version, architecture llama.cpp knows, every tensor's
    data inside the file) and describe it. Raises ModelError with the reason."""
    path = Path(path)
    reader, size, version = _open_gguf(path, path.name)

    architecture = _scalar(reader, "general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise ModelError(f"{path.name} has no general.architecture")
    if architecture not in KNOWN_ARCHITECTURES:
        raise ModelError(
            f"{path.name} is a {architecture!r} model, an architecture llama.cpp does not support"
        )
    if require_encoder and architecture not in ENCODER_ARCHITECTURES:
        # Decoder models (qwen2, ...) do embed, with last-token pooling; allowed but noted by callers.
        raise ModelError(f"{path.name} is a {architecture!r} model, not an embedding encoder")
    _check_tensor_bounds(reader, path, size)
    block_count = _scalar(reader, f"{architecture}.block_count")
    if not isinstance(block_count, int) or block_count <= 0:
        raise ModelError(f"{path.name} has no valid {architecture}.block_count")
    pooling_value = _scalar(reader, f"{architecture}.pooling_type")
    try:
        pooling = gguf.PoolingType(pooling_value).name.lower() if pooling_value is not None else ""
    except ValueError:
        pooling = str(pooling_value)
    file_type = _scalar(reader, "general.file_type")
    return GGUFInfo(
        path=path,
        version=version,
        architecture=architecture,
        name=str(_scalar(reader, "general.name", "") or ""),
        file_type=file_type_name(file_type) if isinstance(file_type, int) else "",
        block_count=block_count,
        embedding_length=int(_scalar(reader, f"{architecture}.embedding_length", 0) or 0),
        context_length=int(_scalar(reader, f"{architecture}.context_length", 0) or 0),
        pooling=pooling,
        tensor_count=len(reader.tensors),
        size=size,
    )


# ---------------------------------------------------------------------------------------
# Slicing: the layer half of 2D Matryoshka.


def _layer_of(tensor_name: str) -> int | None:
    if not tensor_name.startswith("blk."):
        return None
    part = tensor_name.split(".", 2)[1]
    return int(part) if part.isdigit() else None


def _kept_layer(tensor_name: str, layers: int) -> bool:
    layer = _layer_of(tensor_name)
    return layer is None or layer < layers


def slice_gguf(source: Path, out_path: Path, layers: int, *, name: str | None = None) -> Path:
    """Write a GGUF keeping the first `layers` transformer blocks of `source` (any weight
    type: tensors are copied byte for byte), atomically."""
    info = inspect_gguf(source)
    if not 0 < layers <= info.block_count:
        raise ModelError(f"{Path(source).name} has {info.block_count} layers; cannot keep {layers}")
    reader = gguf.GGUFReader(str(source))
    arch = info.architecture
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp_path), arch=arch, endianess=reader.endianess)
    block_key = f"{arch}.block_count"
    try:
        for fld in reader.fields.values():
            # Virtual fields (GGUF.*) and the architecture are written by GGUFWriter itself.
            if fld.name.startswith("GGUF.") or fld.name == "general.architecture":
                continue
            value_type = fld.types[0]
            sub_type = fld.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
            value = fld.contents()
            if fld.name == block_key:
                value = layers
            elif fld.name == "general.name" and name:
                value = name
            writer.add_key_value(fld.name, value, value_type, sub_type=sub_type)
        kept = [t for t in reader.tensors if _kept_layer(t.name, layers)]
        for tensor in kept:
            writer.add_tensor_info(
                tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in kept:
            writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
        writer.close()
        os.replace(tmp_path, out_path)
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        del reader
    return out_path
