"""What a model file is called and how one is checked: weight-type names and hashes.

Kept apart from the engine and the converters so that a download, a wheel check or the
command line's option list needs neither llama.cpp nor the gguf library.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

# The weight types llama.cpp's quantizer writes for us (embedding.quantize), lower case as
# typed on the command line; a file's name carries its type upper case (Q8_0).
QUANT_TYPES = ("q8_0", "q4_k_m", "f16", "bf16")
# A weight type as it appears in a file name: general.file_type's short name (F16, Q4_K_M),
# or TYPE<n> for a number this gguf library has no name for.
WEIGHT_TYPE = re.compile(r"^(F32|F16|BF16|[IT]?Q\d[A-Z0-9_]*|TYPE\d+)$", re.I)


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
