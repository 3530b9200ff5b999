"""Text extraction: a registry of extractors keyed by file extension.

An extractor turns a file into pages of text or raises ExtractionError with a reason a
person can act on. Only the PDF extractor imports pypdf.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from localsearch.core.extract.document import Document, Heading, Page
from localsearch.errors import ExtractionError

__all__ = [
    "Document",
    "Extractor",
    "Heading",
    "Page",
    "extract",
    "register",
    "supported",
    "supported_extensions",
]

Extractor = Callable[[Path, bytes], Document]

_REGISTRY: dict[str, Extractor] = {}


def register(extensions: list[str], extractor: Extractor) -> None:
    for ext in extensions:
        _REGISTRY[ext.lower()] = extractor


def supported(path: Path) -> bool:
    return path.suffix.lower() in _REGISTRY


def supported_extensions() -> list[str]:
    return sorted(_REGISTRY)


def extract(path: Path, data: bytes) -> Document:
    """Extract the text of a file whose bytes were already read (and hashed) by the caller."""
    extractor = _REGISTRY.get(path.suffix.lower())
    if extractor is None:
        raise ExtractionError(f"unsupported file type {path.suffix or '(no extension)'}")
    document = extractor(path, data)
    if not any(p.text.strip() for p in document.pages):
        raise ExtractionError("no text: the file is empty")
    return document


def _register_builtin() -> None:
    from localsearch.core.extract import html, mail, office, pdf, text

    register(text.EXTENSIONS, text.extract_text)
    register([".pdf"], pdf.extract_pdf)
    register(html.EXTENSIONS, html.extract_html)
    register([".docx"], office.extract_docx)
    register([".odt"], office.extract_odt)
    register([".epub"], office.extract_epub)
    register([".eml"], mail.extract_eml)


_register_builtin()
