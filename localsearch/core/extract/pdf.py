"""PDF through pypdf, page by page, with page numbers kept."""

from __future__ import annotations

import io
import logging
import unicodedata
import warnings
from pathlib import Path

import pypdf
from pypdf.errors import FileNotDecryptedError, PdfReadError

from localsearch.core.extract.document import Document, Page
from localsearch.errors import ExtractionError

log = logging.getLogger(__name__)
# pypdf logs every odd font it meets; those are not the user's concern.
logging.getLogger("pypdf").setLevel(logging.ERROR)


_CJK_GROUPS = {"CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "HALFWIDTH", "FULLWIDTH", "HANGUL"}


def _script(ch: str) -> str:
    try:
        first = unicodedata.name(ch).split()[0]
    except ValueError:
        return "?"
    return "CJK" if first in _CJK_GROUPS else first


def _garbled(text: str) -> bool:
    """True when a text layer is mojibake: fonts without a usable Unicode map decode to
    letters of random scripts, which switch script inside words. Real text, Japanese
    included, almost never does (measured: 0.0 on every readable sample PDF, 0.33 to 0.48
    on the garbled ones)."""
    pairs = switches = 0
    previous: str | None = None
    for ch in text:
        if unicodedata.category(ch).startswith("M"):
            continue  # combining marks belong to the letter before them
        if ch.isalpha():
            script = _script(ch)
            if previous is not None:
                pairs += 1
                switches += script != previous
            previous = script
        else:
            previous = None
    return pairs >= 20 and switches / pairs > 0.15


# Typeset ligatures (U+FB00-FB06: ff, fi, fl, ffi, ffl, long st, st) as their letters:
# left in, "misﬁts" matches neither a keyword search for "misfits" nor the model's vocabulary.
_LIGATURES = str.maketrans({chr(c): unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)})


def extract_pdf(path: Path, data: bytes) -> Document:
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError("broken PDF: the file does not start like a PDF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                # Many PDFs are encrypted with an empty user password and open for anyone.
                try:
                    opened = reader.decrypt("")
                except Exception as exc:  # pypdf raises several types for unsupported ciphers
                    raise ExtractionError(f"encrypted PDF: cannot decrypt ({exc})") from exc
                if not opened:
                    raise ExtractionError("encrypted PDF: needs a password")
            page_count = len(reader.pages)
    except ExtractionError:
        raise
    except FileNotDecryptedError as exc:
        raise ExtractionError("encrypted PDF: needs a password") from exc
    except NotImplementedError as exc:  # found by bench/fuzz.py: a non-standard security handler
        raise ExtractionError(f"unsupported PDF: {exc}") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise ExtractionError(f"broken PDF: the file is damaged or incomplete ({exc})") from exc
    except AssertionError as exc:  # found by bench/fuzz.py: pypdf asserts on some broken object streams
        raise ExtractionError("broken PDF: the file is damaged (an object stream is not one)") from exc
    except RecursionError as exc:
        raise ExtractionError("broken PDF: its structure nests too deeply") from exc

    pages: list[Page] = []
    bad_pages: list[int] = []
    for number in range(1, page_count + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                text = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # a broken page must not lose the rest of the document
            # The message may quote the page: logged only when debugging (see logsetup).
            log.info("%s: page %d unreadable (%s)", path, number, type(exc).__name__)
            log.debug("%s: page %d: %s", path, number, exc)
            bad_pages.append(number)
            continue
        text = text.replace("\x00", "").translate(_LIGATURES)
        if text.strip():
            pages.append(Page(text, number))

    notes = tuple(f"page {n} could not be read" for n in bad_pages)
    if not pages:
        if bad_pages:
            raise ExtractionError(f"broken PDF: none of its {page_count} pages could be read")
        raise ExtractionError(
            "scanned PDF: no text layer (the pages are images; it needs OCR to be searchable)"
        )
    if _garbled("".join(p.text for p in pages)):
        raise ExtractionError(
            "PDF text is unreadable: its fonts lack a Unicode mapping, so extraction gives garbage"
        )
    return Document(pages, notes)
