from __future__ import annotations

from pathlib import Path

import pytest

from localsearch.core import extract
from localsearch.errors import ExtractionError
from tests.conftest import PDF_DIR


def _text(path: Path, data: bytes) -> str:
    return "".join(p.text for p in extract.extract(path, data).pages)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Grüße aus Köln".encode(), "Grüße aus Köln"),
        ("Grüße aus Köln, schöne Straße".encode("latin-1"), "Grüße aus Köln, schöne Straße"),
        ("Ελληνικά κείμενα εδώ".encode("utf-16"), "Ελληνικά κείμενα εδώ"),
        ("\ufeffwith bom".encode(), "with bom"),
        (b"line one\r\nline two", "line one\nline two"),
    ],
)
def test_text_encodings_are_detected(data: bytes, expected: str) -> None:
    assert _text(Path("a.txt"), data) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x00" * 100, "binary"),
    ],
)
def test_unusable_text_files_get_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        extract.extract(Path("a.txt"), data)


def test_unsupported_extension() -> None:
    with pytest.raises(ExtractionError, match="unsupported"):
        extract.extract(Path("a.xyz"), b"hello")


EXPECTED_PDF_FAILURES = {
    "samplefiles_libreoffice-writer-password.pdf": "encrypted PDF: needs a password",
    "pdfminer_rc4-40.pdf": "encrypted PDF: needs a password",
    "ocrmypdf_invalid.pdf": "broken PDF",
    "ocrmypdf_c02-22.pdf": "scanned PDF: no text layer",
    "ocrmypdf_linn.pdf": "scanned PDF: no text layer",
    "ocrmypdf_francais.pdf": "scanned PDF: no text layer",
    "ocrmypdf_skew.pdf": "scanned PDF: no text layer",
    "pdfminer_pdf-with-jbig2.pdf": "scanned PDF: no text layer",
    "ocrmypdf_vector.pdf": "scanned PDF: no text layer",
    "pdfminer_jo.pdf": "unreadable",
    "pdfminer_nlp2004slides.pdf": "unreadable",
}


# Words a reader sees in each readable sample PDF (known content, not what any extractor
# returns): the title or opening of each document.
EXPECTED_PDF_TEXT = {
    "samplefiles_minimal-document.pdf": "Lorem ipsum",
    "samplefiles_pdflatex-4-pages.pdf": "Hello, here is some text without a meaning",  # blindtext
    "samplefiles_google-doc-document.pdf": "Beautiful is better than ugly",  # the Zen of Python
    "samplefiles_habibi.pdf": "حَبيبي",
    "samplefiles_habibi-rotated.pdf": "حَبيبي habibi",
    "samplefiles_crazyones-pdfa.pdf": "crazy ones",
    "pdfminer_dmca.pdf": "Digital Millennium Copyright Act",
    "pdfminer_f1040nr.pdf": "Nonresident Alien Income Tax Return",
    "pdfminer_naacl06-shinyama.pdf": "Preemptive Information Extraction",
    "pdfminer_zen_of_python_corrupted.pdf": "Beautiful is better than ugly",
    "pdfminer_issue_566_test_2.pdf": "中国饮料有限公司",
    "ocrmypdf_multipage.pdf": "Percentage",  # the one text layer: a chart's axis
}


def test_the_sample_pdfs_are_all_there() -> None:
    """A missing evaluation folder fails here rather than leaving zero cases to skip."""
    assert PDF_DIR.is_dir(), f"the sample PDFs are missing: {PDF_DIR} (see tests/conftest.py)"
    assert {p.name for p in PDF_DIR.glob("*.pdf")} == set(EXPECTED_PDF_TEXT) | set(EXPECTED_PDF_FAILURES)


@pytest.mark.parametrize("name", sorted(set(EXPECTED_PDF_TEXT) | set(EXPECTED_PDF_FAILURES)))
def test_every_sample_pdf_is_read_or_explained(name: str) -> None:
    path = PDF_DIR / name
    assert path.is_file(), f"missing sample PDF {path}"
    if name in EXPECTED_PDF_FAILURES:
        with pytest.raises(ExtractionError, match=EXPECTED_PDF_FAILURES[name]):
            extract.extract(path, path.read_bytes())
        return
    document = extract.extract(path, path.read_bytes())
    assert document.pages
    assert all(p.number is not None and p.number >= 1 for p in document.pages)
    text = " ".join(" ".join(p.text.split()) for p in document.pages)
    assert EXPECTED_PDF_TEXT[name] in text


def test_pdf_pages_keep_their_numbers() -> None:
    path = PDF_DIR / "pdfminer_dmca.pdf"  # encrypted with an empty user password: opens for anyone
    document = extract.extract(path, path.read_bytes())
    assert [p.number for p in document.pages] == list(range(1, 19))
    assert "Digital Millennium Copyright Act" in document.pages[0].text


def test_non_latin_pdf_text_survives() -> None:
    path = PDF_DIR / "pdfminer_issue_566_test_2.pdf"
    assert "中国饮料有限公司" in _text(path, path.read_bytes())
