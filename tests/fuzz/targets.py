"""Fuzz targets shared by the property tests (tests/fuzz/test_fuzz.py, a short fixed
budget in CI) and the long runs (bench/fuzz.py, hypothesis or atheris).

Each target takes bytes and checks one contract: the code under test either returns a
sane result or raises the error meant for the user (ExtractionError, ModelError,
UserFacingError) with a reason. Anything else escaping is a bug the fuzzer reports.
Seeds are real files: the PDFs in ../shared/evaldata/pdfs and small valid documents
built here."""

from __future__ import annotations

import io
import random
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from localsearch.core import extract
from localsearch.core.chunking import chunk_document
from localsearch.core.extract import Document, Page
from localsearch.errors import ExtractionError, ModelError, UserFacingError
from tests.conftest import PDF_DIR

# A document's text may be large, but never more than this many times its file's size
# plus a constant: a decompression bomb must be refused, not inflated.
TEXT_GROWTH = 1100

# -- seeds --------------------------------------------------------------------------------


def _zip(members: dict[str, bytes | str], *, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compress) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def docx_seed() -> bytes:
    body = (
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        "<w:p><w:r><w:t>Lava flows from the volcano.</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>Knead the dough.</w:t></w:r></w:p></w:body></w:document>"
    )
    return _zip({"[Content_Types].xml": "<Types/>", "word/document.xml": body})


def odt_seed() -> bytes:
    content = (
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        "<text:h>Volcanoes</text:h><text:p>Lava flows.</text:p></office:text></office:body>"
        "</office:document-content>"
    )
    return _zip({"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": content})


def epub_seed() -> bytes:
    container = (
        '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf"/></rootfiles></container>'
    )
    opf = (
        '<package xmlns="http://www.idpf.org/2007/opf"><manifest>'
        '<item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/></spine></package>'
    )
    chapter = "<html><body><h1>One</h1><p>Lava flows from the volcano.</p></body></html>"
    return _zip(
        {
            "mimetype": "application/epub+zip",
            "META-INF/container.xml": container,
            "OEBPS/content.opf": opf,
            "OEBPS/c1.xhtml": chapter,
        }
    )


def zip_bomb(kind: str = "docx", unpacked: int = 200 * 1024 * 1024) -> bytes:
    """A valid archive whose main member inflates to `unpacked` bytes of one repeated
    byte (about 200 kB compressed)."""
    member = {"docx": "word/document.xml", "odt": "content.xml", "epub": "OEBPS/c1.xhtml"}[kind]
    seed = {"docx": docx_seed, "odt": odt_seed, "epub": epub_seed}[kind]()
    with zipfile.ZipFile(io.BytesIO(seed)) as original:
        members: dict[str, bytes | str] = {n: original.read(n) for n in original.namelist() if n != member}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        with archive.open(member, "w", force_zip64=True) as handle:
            block = b"a" * (1 << 20)
            for _ in range(unpacked // len(block)):
                handle.write(block)
    return out.getvalue()


def docx_paragraphs(unpacked: int) -> bytes:
    """A valid DOCX whose document.xml is `unpacked` bytes of one-letter paragraphs: an
    XML tree, not a blob, once parsed (a few hundred kB on disk)."""
    paragraph = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as handle:
            handle.write(
                b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            )
            handle.write(b"<w:body>")
            block = paragraph * 10_000
            for _ in range(unpacked // len(block)):
                handle.write(block)
            handle.write(b"</w:body></w:document>")
    return out.getvalue()


def pdf_with_stream(encoded: bytes, *, flate: bool = True) -> bytes:
    """A one-page PDF whose content stream holds `encoded` (marked Flate-compressed when
    `flate`: the caller compresses)."""
    filters = b" /Filter /FlateDecode" if flate else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(encoded), filters) + encoded + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def pdf_text(text: str) -> bytes:
    return pdf_with_stream(zlib.compress(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1"), 9))


def pdf_bomb(unpacked: int = 512 * 1024 * 1024) -> bytes:
    """A PDF whose page content inflates to `unpacked` bytes (about 500 kB on disk)."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"BT /F1 12 Tf 72 720 Td (boom) Tj ET\n")]
    block = b" " * (1 << 20)
    for _ in range(unpacked // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    return pdf_with_stream(b"".join(parts))


@cache
def real_pdfs() -> tuple[bytes, ...]:
    files = sorted(PDF_DIR.glob("*.pdf"))
    if not files:
        raise FileNotFoundError(f"the evaluation PDFs are missing from {PDF_DIR}")
    return tuple(p.read_bytes() for p in files if p.stat().st_size < 400_000)


def mutate(data: bytes, rng: random.Random, rounds: int = 8) -> bytes:
    """Byte flips, inserts, deletes, duplicated slices, and chopped tails."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        if not buf:
            buf.extend(rng.randbytes(16))
        op = rng.randrange(6)
        at = rng.randrange(len(buf))
        if op == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at : at + 1] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            del buf[at : at + rng.randint(1, 64)]
        elif op == 3:
            end = min(len(buf), at + rng.randint(1, 256))
            buf[at:at] = buf[at:end] * rng.randint(1, 4)
        elif op == 4:
            del buf[at:]
        else:
            interesting = [b"0", b"-1", b"4294967295", b"99999999999", b"(", b")", b"<<", b">>", b"R", b"\0"]
            buf[at:at] = rng.choice(interesting)
    return bytes(buf)


# -- targets ------------------------------------------------------------------------------


def _check_document(document: Document, size: int) -> None:
    assert document.pages, "an extractor returned no pages without saying why"
    for page in document.pages:
        assert isinstance(page.text, str)
        for offset, level, _ in page.headings:
            assert 0 <= offset <= len(page.text) and 1 <= level <= 6
    assert document.char_count <= TEXT_GROWTH * size + 100_000, "text grew like a decompression bomb"


def extract_target(suffix: str) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        try:
            document = extract.extract(Path(f"fuzz{suffix}"), data)
        except ExtractionError as exc:
            assert str(exc), "an extraction error without a reason"
            return
        _check_document(document, len(data))

    target.__name__ = f"extract{suffix.replace('.', '_')}"
    return target


def mutated(
    target: Callable[[bytes], None], seeds: Callable[[], tuple[bytes, ...]]
) -> Callable[[bytes], None]:
    """For fuzzers that do not mutate files themselves (hypothesis, the random loop): the
    first 8 bytes of the input pick a seed and seed its mutations, the rest is appended.
    atheris instead starts from the seeds as its corpus and mutates them directly."""

    def wrapped(data: bytes) -> None:
        pool = seeds()
        pick = int.from_bytes(data[:8].ljust(8, b"\0"), "little")
        target(mutate(pool[pick % len(pool)], random.Random(pick)) + data[8:])

    wrapped.__name__ = f"mutated_{target.__name__}"
    return wrapped


def _chunk_tokenize(text: str) -> list[int]:
    # A token per 8 characters of each word (as subword tokenizers cut long words), one
    # per unprintable character: a long run without spaces is many tokens.
    tokens = [len(w) for w in text.split() for _ in range(0, len(w), 8)]
    return tokens + [0] * sum(1 for ch in text if not ch.isprintable())


def chunker_target(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    max_tokens = 8 + data[0] % 120 if data else 32
    overlap = data[1] % 64 if len(data) > 1 else 0
    document = Document([Page(text, 1, ())])
    chunks = chunk_document(document, _chunk_tokenize, max_tokens=max_tokens, overlap=overlap)
    previous_end = -1
    for chunk in chunks:
        assert 0 <= chunk.start_char <= chunk.end_char <= len(text)
        assert chunk.text == text[chunk.start_char : chunk.end_char]
        assert len(chunk.tokens) <= max_tokens, (len(chunk.tokens), max_tokens)
        assert chunk.end_char >= previous_end
        previous_end = chunk.end_char
    if text.split():
        assert chunks, "text with words gave no chunk"


_SEARCH_SERVICE: list[object] = []


def _search_service() -> object:
    if not _SEARCH_SERVICE:
        from localsearch.core.service import LocalSearch
        from localsearch.settings import Settings
        from tests.fakes import FakeEmbedder

        home = Path(tempfile.mkdtemp(prefix="fuzz-search-"))
        docs = home / "docs"
        docs.mkdir()
        (docs / "a.txt").write_text('Lava "flows" from the volcano; AND OR NOT NEAR(x y) * ^ - + : column')
        (docs / "b.md").write_text("# Bread\n\nKnead the dough and let it rise overnight.")
        service = LocalSearch(
            Settings(), db_path=home / "index.sqlite3", embedder_factory=lambda s, q: FakeEmbedder()
        )
        list(service.index_paths([str(docs)]))
        _SEARCH_SERVICE.append(service)
    return _SEARCH_SERVICE[0]


def query_target(data: bytes) -> None:
    from localsearch.core.query import MAX_QUERY_CHARS, parse_query

    query = data.decode("utf-8", errors="surrogateescape")
    parsed = parse_query(query)
    assert len(parsed.text) <= MAX_QUERY_CHARS
    service = _search_service()
    for mode in ("keyword", "hybrid", "semantic"):
        try:
            hits = service.search(query, 5, mode=mode)  # type: ignore[attr-defined]
        except UserFacingError as exc:
            assert str(exc)
            continue
        assert all(0 <= h.start_char <= h.end_char for h in hits)


def settings_target(data: bytes) -> None:
    from localsearch.settings import Settings, load

    with tempfile.TemporaryDirectory(prefix="fuzz-settings-") as folder:
        path = Path(folder) / "settings.toml"
        path.write_bytes(data)
        try:
            loaded = load(path)
        except UserFacingError as exc:
            assert str(exc)
            return
        assert isinstance(loaded, Settings)


@cache
def gguf_seed() -> bytes:
    """A small valid GGUF: BERT metadata, a 300-word vocabulary, three tensors."""
    import numpy as np

    import gguf

    with tempfile.TemporaryDirectory(prefix="fuzz-gguf-") as folder:
        path = Path(folder) / "seed.gguf"
        writer = gguf.GGUFWriter(str(path), arch="bert")
        writer.add_block_count(1)
        writer.add_embedding_length(8)
        writer.add_context_length(64)
        writer.add_token_list([f"w{i}" for i in range(300)])
        writer.add_token_scores([0.0] * 300)
        writer.add_string("general.name", "seed")
        writer.add_tensor("token_embd.weight", np.zeros((300, 8), dtype=np.float32))
        writer.add_tensor("blk.0.attn_q.weight", np.ones((8, 8), dtype=np.float16))
        writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def gguf_target(content: bytes) -> None:
    """The validator on any file: accepted files must also pass gguf's own reader and the
    full inspection; every refusal is a ModelError with a reason."""
    from localsearch.core.models.gguf_io import check_gguf_header, inspect_gguf

    with tempfile.TemporaryDirectory(prefix="fuzz-gguf-") as folder:
        path = Path(folder) / "x.gguf"
        path.write_bytes(content)
        try:
            header = check_gguf_header(path)
        except ModelError as exc:
            assert str(exc)
            return
        assert header.data_offset <= len(content)
        try:
            inspect_gguf(path)
        except ModelError as exc:
            assert str(exc)


# name -> (target taking a whole input, the seeds a mutating fuzzer starts from)
FUZZ: dict[str, tuple[Callable[[bytes], None], Callable[[], tuple[bytes, ...]]]] = {
    "pdf": (extract_target(".pdf"), real_pdfs),
    "docx": (extract_target(".docx"), lambda: (docx_seed(),)),
    "odt": (extract_target(".odt"), lambda: (odt_seed(),)),
    "epub": (extract_target(".epub"), lambda: (epub_seed(),)),
    "html": (
        extract_target(".html"),
        lambda: (b"<html><head><title>T</title></head><body><h1>A</h1><p>x</p>",),
    ),
    "eml": (extract_target(".eml"), lambda: (b"Subject: hi\nContent-Type: text/plain\n\nLava flows.\n",)),
    "text": (extract_target(".txt"), lambda: ("# Notes\n\nLava flows. \u00e9\u65e5".encode(),)),
    "chunker": (chunker_target, lambda: (bytes([100, 10]) + b"Lava flows. From the volcano.\n\nNext.",)),
    "query": (query_target, lambda: (b'lava "flows from" volcano AND NOT x*',)),
    "settings": (settings_target, lambda: (b'model = "x"\nexclude = ["a/"]\nlate_chunking = true\n',)),
    "gguf": (gguf_target, lambda: (gguf_seed(),)),
}
# Whole inputs mutated from the seeds: what the property tests and the random loop run.
TARGETS: dict[str, Callable[[bytes], None]] = {name: mutated(t, seeds) for name, (t, seeds) in FUZZ.items()}
