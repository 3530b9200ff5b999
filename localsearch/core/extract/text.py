"""Plain text, Markdown and source files: the encoding is detected, not assumed."""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from localsearch.core.extract.document import Document, Page
from localsearch.core.extract.headings import text_headings
from localsearch.errors import ExtractionError

EXTENSIONS = [
    ".txt",
    ".text",
    ".md",
    ".markdown",
    ".mdown",
    ".rst",
    ".org",
    ".log",
    ".csv",
    ".tsv",
    ".json",
    ".yaml",
    ".yml",
    ".toml",
    ".ini",
    ".cfg",
    ".conf",
    ".tex",
    ".bib",
    ".py",
    ".js",
    ".ts",
    ".tsx",
    ".jsx",
    ".java",
    ".c",
    ".h",
    ".cpp",
    ".hpp",
    ".cc",
    ".cs",
    ".go",
    ".rs",
    ".rb",
    ".php",
    ".swift",
    ".kt",
    ".scala",
    ".sh",
    ".bash",
    ".zsh",
    ".sql",
    ".r",
    ".m",
    ".lua",
    ".pl",
    ".css",
    ".scss",
    ".xml",
]

_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def decode(data: bytes) -> str:
    """Bytes to text: BOM, then strict UTF-8, then charset detection; binary is refused."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data[:8192]:
        raise ExtractionError("not text: the file holds binary data (NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise ExtractionError("not text: no character encoding fits its bytes")
    # Short Western text often fits several code pages equally well; Windows-1252 is by far
    # the most common legacy encoding, so it wins a tie.
    if best.encoding != "cp1252":
        western = from_bytes(data, cp_isolation=["cp1252"]).best()
        if western is not None and western.chaos <= best.chaos + 0.01:
            return str(western)
    return str(best)


def extract_text(path: Path, data: bytes) -> Document:
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n")
    return Document([Page(text, None, text_headings(text, path.suffix))])
