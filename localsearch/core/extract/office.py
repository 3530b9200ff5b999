"""Word (DOCX), OpenDocument text (ODT) and EPUB books: zip archives of XML, read with the
standard library (and defusedxml for the rare part that declares a document type), so no
office suite is needed. bench/library_compare.py measures this against python-docx,
odfpy and ebooklib: they read less of a document and fail worse on hostile ones."""

from __future__ import annotations

import contextlib
import io
import posixpath
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from localsearch.core.extract.document import Document, Heading, Page
from localsearch.core.extract.html import decode_markup, markup_to_page
from localsearch.errors import ExtractionError

# A few kilobytes of zip can claim gigabytes; no real document part comes near these.
MAX_MEMBER_BYTES = 200 * 1024 * 1024
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
# A member parsed into an XML tree takes about 13 times its size in memory (measured:
# 190 MB of one-letter paragraphs, from a 0.6 MB DOCX, peaked at 2.6 GB). A book-length
# document.xml is tens of megabytes.
MAX_XML_BYTES = 64 * 1024 * 1024

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SPACES = re.compile(r"[ \t\r\n]+")


def _split(tag: str) -> tuple[str, str]:
    """'{namespace}local' to (namespace, local)."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _local(element: ET.Element) -> str:
    return _split(element.tag)[1] if isinstance(element.tag, str) else ""


class _Archive:
    """A zip archive whose members are read with limits, every failure an ExtractionError."""

    def __init__(self, data: bytes, kind: str) -> None:
        self.kind = kind
        self.unpacked = 0
        if not data.startswith(b"PK"):
            raise ExtractionError(f"broken {kind}: the file is not a valid zip archive")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
            # zipfile's own words ("File is not a zip file") would only confuse here.
            raise ExtractionError(f"broken {kind}: the zip archive is damaged or incomplete") from exc
        except NotImplementedError as exc:  # a zip format version newer than Python reads
            raise ExtractionError(
                f"broken {kind}: the zip archive is damaged or unsupported ({exc})"
            ) from exc
        self.names = {info.filename: info for info in infos}
        # Some tools write member names in another case than the references to them.
        self.folded = {name.casefold(): name for name in self.names}

    def find(self, name: str) -> str | None:
        if name in self.names:
            return name
        return self.folded.get(name.casefold())

    def read(self, name: str, limit: int | None = None) -> bytes:
        limit = MAX_MEMBER_BYTES if limit is None else min(limit, MAX_MEMBER_BYTES)
        found = self.find(name)
        if found is None:
            raise ExtractionError(f"broken {self.kind}: {name} is missing from the archive")
        info = self.names[found]
        if info.flag_bits & 0x1:
            raise ExtractionError(f"encrypted {self.kind}: the archive is protected by a password")
        limit_mb = limit // (1024 * 1024)
        too_large = f"{self.kind} refused: {found} is too large when unpacked (over {limit_mb} MB)"
        if info.file_size > limit:
            raise ExtractionError(too_large)
        try:
            with self.zip.open(info) as member:
                # zipfile stops at the size the archive claims; the limit must not rest on that.
                content = member.read(limit + 1)
        except NotImplementedError as exc:
            raise ExtractionError(
                f"broken {self.kind}: {found} uses a zip compression method that is not supported"
            ) from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as exc:
            raise ExtractionError(
                f"broken {self.kind}: {found} is damaged inside the archive ({_reason(exc)})"
            ) from exc
        if len(content) > limit:
            raise ExtractionError(too_large)
        self.unpacked += len(content)
        if self.unpacked > MAX_ARCHIVE_BYTES:
            limit_gb = MAX_ARCHIVE_BYTES // (1024 * 1024 * 1024)
            raise ExtractionError(f"{self.kind} refused: it is too large when unpacked (over {limit_gb} GB)")
        return content

    def xml(self, name: str) -> ET.Element:
        return _parse_xml(self.read(name, MAX_XML_BYTES), name, self.kind)


class _PrologEnd(Exception):
    pass


def _declares_doctype(content: bytes) -> bool:
    """Whether the XML has a document type declaration, the only place where entities can
    be declared. expat reads the prolog alone (whatever the encoding) and stops at the
    first element, so this costs next to nothing."""
    probe = expat.ParserCreate()
    found = False

    def doctype(*_args: object) -> None:
        nonlocal found
        found = True
        raise _PrologEnd

    def element(*_args: object) -> None:
        raise _PrologEnd

    probe.StartDoctypeDeclHandler = doctype
    probe.StartElementHandler = element
    # What is wrong with the XML, if anything, is reported by the real parse.
    with contextlib.suppress(_PrologEnd, expat.ExpatError, ValueError, LookupError):
        probe.Parse(content, True)
    return found


def _parse_xml(content: bytes, name: str, kind: str) -> ET.Element:
    """The parts of a document never need a DTD. One that has one is parsed by defusedxml,
    which refuses entity declarations: expat's own limit on entity expansion (from version
    2.4, whichever expat Python was built with) still lets a 64 MB part expand a hundredfold."""
    try:
        if _declares_doctype(content):
            return defused_fromstring(content)
        return ET.fromstring(content)
    except DefusedXmlException as exc:
        raise ExtractionError(
            f"{kind} refused: {name} declares XML entities, which a document never needs "
            "(they can expand to exhaust memory)"
        ) from exc
    except ET.ParseError as exc:
        line, column = exc.position
        raise ExtractionError(
            f"broken {kind}: {name} is not valid XML (line {line}, column {column})"
        ) from exc
    except (ValueError, LookupError) as exc:  # e.g. an XML declaration naming an unknown encoding
        raise ExtractionError(f"broken {kind}: {name} is not valid XML ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _join(blocks: Iterable[str]) -> str:
    return "\n\n".join(b for b in blocks if b.strip())


def _join_marked(blocks: list[str], marks: dict[int, int]) -> tuple[str, tuple[Heading, ...]]:
    """_join's text, and the headings among the blocks: `marks` maps a block's index to
    its heading level."""
    kept: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for index, block in enumerate(blocks):
        if not block.strip():
            continue
        if kept:
            offset += 2
        level = marks.get(index)
        if level is not None:
            indent = len(block) - len(block.lstrip())
            headings.append((offset + indent, level, _SPACES.sub(" ", block).strip()))
        kept.append(block)
        offset += len(block)
    return "\n\n".join(kept), tuple(headings)


def _nests_too_deeply(kind: str) -> ExtractionError:
    return ExtractionError(f"broken {kind}: its XML nests too deeply to read")


# --- DOCX ---------------------------------------------------------------------------------

_WORD = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",  # "Strict" Office Open XML
}
_MARKUP_COMPATIBILITY = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
# Properties hold no text (their w:tab elements are tab stops, not tabs); deleted and
# moved-away text is not what the reader sees; field instructions are code, not text.
_WORD_SKIP = {
    "pPr", "rPr", "tblPr", "tblGrid", "trPr", "tcPr", "sectPr", "del", "moveFrom", "delText",
    "instrText", "commentReference",
}  # fmt: skip


def _word_name(element: ET.Element) -> str | None:
    if not isinstance(element.tag, str):
        return None
    namespace, local = _split(element.tag)
    return local if namespace in _WORD else None


def _skipped(element: ET.Element) -> bool:
    if not isinstance(element.tag, str):
        return True
    namespace, local = _split(element.tag)
    # Drawings come twice, as DrawingML and as an older VML fallback: read only the first.
    if namespace == _MARKUP_COMPATIBILITY:
        return local == "Fallback"
    return namespace in _WORD and local in _WORD_SKIP


@dataclass
class _Outline:
    """The heading level of each paragraph style of a document, and the blocks found to
    be headings (by index in the list of blocks, with their level)."""

    levels: dict[str, int]
    marks: dict[int, int] = field(default_factory=dict)


_HEADING_STYLE = re.compile(r"heading ?([1-9])")


def _style_level(name: str) -> int | None:
    """Title and Heading 1-9 (by a style's name, or by its id where no names are known)."""
    name = name.strip().lower()
    if name == "title":
        return 1
    match = _HEADING_STYLE.fullmatch(name)
    return min(int(match.group(1)), 6) if match else None


def _word_val(element: ET.Element) -> str | None:
    return next((v for k, v in element.attrib.items() if _split(k)[1] == "val"), None)


def _outline_level(properties: ET.Element) -> int | None:
    """A w:outlineLvl among paragraph properties: 0-8 are heading levels, 9 is body text."""
    for prop in properties:
        if _word_name(prop) == "outlineLvl":
            value = _word_val(prop) or ""
            return min(int(value) + 1, 6) if value.isdigit() and int(value) < 9 else None
    return None


def _word_styles(archive: _Archive, main: str) -> dict[str, int]:
    """Style id to heading level, from styles.xml: Word writes localized ids ("berschrift1"
    in German) but English names ("heading 1"); an outline level or a heading style the
    style is based on count too."""
    member = next((m for t, m in _relationships(archive, main) if t == "styles"), "word/styles.xml")
    if archive.find(member) is None:
        return {}
    try:
        root = archive.xml(member)
    except ExtractionError:
        return {}  # the text is still readable; headings fall back to style ids
    own: dict[str, int | None] = {}
    based_on: dict[str, str] = {}
    for style in root:
        if _word_name(style) != "style":
            continue
        style_id = next((v for k, v in style.attrib.items() if _split(k)[1] == "styleId"), None)
        if not style_id:
            continue
        level = None
        for prop in style:
            name = _word_name(prop)
            if name == "name" and level is None:
                level = _style_level(_word_val(prop) or "")
            elif name == "pPr":
                level = _outline_level(prop) or level
            elif name == "basedOn" and _word_val(prop):
                based_on[style_id] = _word_val(prop) or ""
        own[style_id] = level
    levels: dict[str, int] = {}
    for style_id in own:
        current: str | None = style_id
        seen: set[str] = set()
        while current is not None and current not in seen:
            seen.add(current)
            if own.get(current) is not None:
                levels[style_id] = own[current] or 0
                break
            current = based_on.get(current)
    return levels


def _paragraph_level(paragraph: ET.Element, levels: dict[str, int]) -> int | None:
    for child in paragraph:
        if _word_name(child) != "pPr":
            continue
        direct = _outline_level(child)
        if direct is not None:
            return direct
        for prop in child:
            if _word_name(prop) == "pStyle":
                style = _word_val(prop) or ""
                return levels.get(style) if levels else _style_level(style)
    return None


def _word_blocks(element: ET.Element, out: list[str], outline: _Outline | None = None) -> None:
    """Paragraphs and table rows under element, one block each, in document order; with an
    outline, the body's heading paragraphs are marked in it."""
    for child in element:
        if _skipped(child):
            continue
        name = _word_name(child)
        if name == "p":
            if outline is not None:
                level = _paragraph_level(child, outline.levels)
                if level is not None:
                    outline.marks[len(out)] = level
            parts: list[str] = []
            boxes: list[str] = []
            _word_inline(child, parts, boxes)
            out.append("".join(parts).strip())
            out.extend(boxes)
        elif name == "tr":
            cells: list[str] = []
            _word_cells(child, cells)
            if any(c.strip() for c in cells):
                out.append("\t".join(cells).strip())
        else:
            _word_blocks(child, out, outline)


def _word_cells(row: ET.Element, cells: list[str]) -> None:
    for child in row:
        if _skipped(child):
            continue
        if _word_name(child) == "tc":
            blocks: list[str] = []
            _word_blocks(child, blocks)
            cells.append(" ".join(b for b in blocks if b))
        else:
            _word_cells(child, cells)  # cells wrapped in content controls or custom XML


def _word_inline(element: ET.Element, parts: list[str], boxes: list[str]) -> None:
    for child in element:
        if _skipped(child):
            continue
        name = _word_name(child)
        if name == "t":
            parts.append(child.text or "")
        elif name in ("tab", "ptab"):
            parts.append("\t")
        elif name in ("br", "cr"):
            parts.append("\n")
        elif name == "noBreakHyphen":
            parts.append("-")
        elif name == "txbxContent":
            # A text box's paragraphs follow the paragraph it is anchored in.
            _word_blocks(child, boxes)
        else:
            _word_inline(child, parts, boxes)


def _relationships(archive: _Archive, source: str) -> list[tuple[str, str]]:
    """(type, member name) of the internal relationships of a package part ("" = the package)."""
    folder, name = posixpath.split(source)
    rels_name = posixpath.join(folder, "_rels", f"{name}.rels")
    if archive.find(rels_name) is None:
        return []
    try:
        root = archive.xml(rels_name)
    except ExtractionError:
        return []  # relationships only locate optional parts; the defaults will do
    found = []
    for rel in root.iter(f"{{{_RELATIONSHIPS}}}Relationship"):
        target, kind = rel.get("Target"), rel.get("Type", "")
        if not target or rel.get("TargetMode") == "External":
            continue
        target = unquote(target)
        member = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found.append((kind.rsplit("/", 1)[-1], posixpath.normpath(member)))
    return found


def extract_docx(path: Path, data: bytes) -> Document:
    if data.startswith(_OLE_MAGIC):
        # Word keeps a password-protected DOCX inside an old-style compound file.
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise ExtractionError("encrypted DOCX: needs a password")
        raise ExtractionError("not a DOCX: this is an old Word 97-2003 (.doc) file with a .docx name")
    archive = _Archive(data, "DOCX")
    main = next((m for t, m in _relationships(archive, "") if t == "officeDocument"), "word/document.xml")
    if archive.find(main) is None:
        raise ExtractionError(f"broken DOCX: {main} is missing from the archive")
    blocks: list[str] = []
    notes: list[str] = []
    warnings: list[str] = []
    outline = _Outline(_word_styles(archive, main))
    try:
        _word_blocks(archive.xml(main), blocks, outline)
        for kind, member in _relationships(archive, main):
            if kind not in ("footnotes", "endnotes") or archive.find(member) is None:
                continue
            try:
                _word_blocks(archive.xml(member), notes)
            except ExtractionError as exc:
                warnings.append(f"{kind} could not be read: {exc}")
    except RecursionError as exc:
        raise _nests_too_deeply("DOCX") from exc
    content, headings = _join_marked(blocks + notes, outline.marks)
    if not content:
        raise ExtractionError("no text: the document holds no text (perhaps only images)")
    return Document([Page(content, None, headings)], tuple(warnings))


# --- ODT ----------------------------------------------------------------------------------

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_ODF_PARAGRAPHS = {f"{{{_TEXT}}}p", f"{{{_TEXT}}}h"}
# Deleted text kept for change tracking, comments, and footnote numbers (the notes
# themselves are gathered at the end).
_ODF_SKIP = {
    f"{{{_TEXT}}}tracked-changes",
    f"{{{_TEXT}}}note-citation",
    f"{{{_OFFICE}}}annotation",
    f"{{{_OFFICE}}}forms",
    f"{{{_TEXT}}}sequence-decls",
    f"{{{_TABLE}}}covered-table-cell",
}
# ODF allows c="1000000000"; a sanity limit keeps one element from filling memory.
_MAX_SPACES = 100
_ODF_HEADING = f"{{{_TEXT}}}h"


def _odf_level(heading: ET.Element) -> int:
    value = heading.get(f"{{{_TEXT}}}outline-level", "1").strip()
    return min(max(int(value), 1), 6) if value.isdigit() else 1


class _Odf:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.body: list[str] = []  # the blocks of the document body
        self.marks: dict[int, int] = {}  # the body's headings: block index -> level

    def blocks(self, element: ET.Element, out: list[str]) -> None:
        for child in element:
            if child.tag in _ODF_SKIP:
                continue
            if child.tag == _ODF_HEADING and out is self.body:
                self.marks[len(out)] = _odf_level(child)
            if child.tag in _ODF_PARAGRAPHS:
                self.paragraph(child, out)
            elif child.tag == f"{{{_TABLE}}}table-row":
                cells = [self.cell(c) for c in child if c.tag == f"{{{_TABLE}}}table-cell"]
                if any(c.strip() for c in cells):
                    out.append("\t".join(cells).strip())
            else:
                self.blocks(child, out)

    def paragraph(self, paragraph: ET.Element, out: list[str]) -> None:
        parts: list[str] = []
        frames: list[str] = []  # text boxes anchored in the paragraph follow it
        self.inline(paragraph, parts, frames)
        out.append("".join(parts).strip())
        out.extend(frames)

    def cell(self, cell: ET.Element) -> str:
        blocks: list[str] = []
        self.blocks(cell, blocks)
        return " ".join(b for b in blocks if b)

    def inline(self, element: ET.Element, parts: list[str], frames: list[str]) -> None:
        # Like HTML, ODF collapses whitespace in text; runs of spaces are written as <text:s>.
        if element.text:
            parts.append(_SPACES.sub(" ", element.text))
        for child in element:
            tag = child.tag
            if tag == f"{{{_TEXT}}}s":
                try:
                    count = int(child.get(f"{{{_TEXT}}}c", "1"))
                except ValueError:
                    count = 1
                parts.append(" " * max(1, min(count, _MAX_SPACES)))
            elif tag == f"{{{_TEXT}}}tab":
                parts.append("\t")
            elif tag == f"{{{_TEXT}}}line-break":
                parts.append("\n")
            elif tag == f"{{{_TEXT}}}note":
                for body in child.iter(f"{{{_TEXT}}}note-body"):
                    self.blocks(body, self.notes)
            elif tag == f"{{{_DRAW}}}text-box":
                self.blocks(child, frames)
            elif tag in _ODF_PARAGRAPHS:  # in shapes, which have no text box
                self.paragraph(child, frames)
            elif tag not in _ODF_SKIP:
                self.inline(child, parts, frames)
            if child.tail:
                parts.append(_SPACES.sub(" ", child.tail))


def extract_odt(path: Path, data: bytes) -> Document:
    archive = _Archive(data, "ODT")
    manifest = archive.find("META-INF/manifest.xml")
    if manifest is not None and b"encryption-data" in archive.read(manifest):
        raise ExtractionError("encrypted ODT: needs a password")
    root = archive.xml("content.xml")
    body = root.find(f"{{{_OFFICE}}}body")
    if body is None:
        raise ExtractionError("broken ODT: content.xml has no document body")
    reader = _Odf()
    try:
        reader.blocks(body, reader.body)
    except RecursionError as exc:
        raise _nests_too_deeply("ODT") from exc
    content, headings = _join_marked(reader.body + reader.notes, reader.marks)
    if not content:
        raise ExtractionError("no text: the document holds no text (perhaps only images)")
    return Document([Page(content, None, headings)])


# --- EPUB ---------------------------------------------------------------------------------

_CHAPTER_TYPES = {"application/xhtml+xml", "text/html", "application/xml", "text/xml"}


def _member_path(base: str, href: str) -> str:
    """A reference inside the book (URL-encoded, relative, maybe with #fragment) to a member name."""
    href = unquote(href.split("#", 1)[0])
    return posixpath.normpath(posixpath.join(base, href)).lstrip("/")


def _encrypted_members(archive: _Archive) -> set[str]:
    """Members that META-INF/encryption.xml says are encrypted. Fonts are often merely
    obfuscated this way, which is no obstacle to reading the text."""
    if archive.find("META-INF/encryption.xml") is None:
        return set()
    try:
        root = archive.xml("META-INF/encryption.xml")
    except ExtractionError:
        return set()  # a chapter that then fails to decode is reported as protected
    return {
        _member_path("", reference.get("URI", ""))
        for reference in root.iter()
        if _local(reference) == "CipherReference" and reference.get("URI")
    }


def _metadata(package: ET.Element) -> str:
    """Title and authors, so that a search for them finds the book."""
    titles: list[str] = []
    creators: list[str] = []
    metadata = next((e for e in package.iter() if _local(e) == "metadata"), None)
    for element in metadata.iter() if metadata is not None else ():
        name = _local(element)
        if name not in ("title", "creator"):
            continue
        value = _SPACES.sub(" ", "".join(element.itertext())).strip()
        if value and name == "title" and not titles:
            titles.append(value)
        elif value and name == "creator":
            creators.append(value)
    return "\n".join(titles + ([", ".join(creators)] if creators else []))


def extract_epub(path: Path, data: bytes) -> Document:
    archive = _Archive(data, "EPUB")
    container = archive.xml("META-INF/container.xml")
    package_name = next(
        (e.get("full-path") for e in container.iter() if _local(e) == "rootfile" and e.get("full-path")), None
    )
    if package_name is None:
        raise ExtractionError("broken EPUB: META-INF/container.xml does not name the book's package file")
    package = archive.xml(package_name)
    base = posixpath.dirname(package_name)
    manifest: dict[str, tuple[str, str]] = {}
    spine: list[str] = []
    for element in package.iter():
        if _local(element) == "item":
            manifest[element.get("id", "")] = (element.get("href", ""), element.get("media-type", ""))
        elif _local(element) == "itemref":
            spine.append(element.get("idref", ""))
    chapters: list[str] = []
    for idref in spine:
        href, media_type = manifest.get(idref, ("", ""))
        member = _member_path(base, href)
        if href and media_type in _CHAPTER_TYPES and member not in chapters:
            chapters.append(member)
    if not chapters:
        raise ExtractionError("broken EPUB: its package lists no chapters to read")
    if _encrypted_members(archive) & set(chapters):
        raise ExtractionError("encrypted EPUB: protected by DRM")

    protected = archive.find("META-INF/encryption.xml") is not None
    pages: list[Page] = []
    warnings: list[str] = []
    for member in chapters:
        if archive.find(member) is None:
            warnings.append(f"chapter {member} is missing from the archive")
            continue
        markup = archive.read(member)
        try:
            content, headings = markup_to_page(decode_markup(markup), title=False)
        except ExtractionError as exc:
            if protected:
                raise ExtractionError("encrypted EPUB: protected by DRM") from exc
            warnings.append(f"chapter {member} could not be read: {exc}")
            continue
        except RecursionError:
            warnings.append(f"chapter {member} could not be read: it nests too deeply")
            continue
        if content:
            # One page per chapter keeps every chunk inside one chapter. The pages carry no
            # number: a reader reflows the book, so "page 7" would point nowhere.
            pages.append(Page(content, None, headings))
    if not pages:
        if warnings:
            raise ExtractionError(f"broken EPUB: none of its {len(chapters)} chapters could be read")
        raise ExtractionError("no text: the book holds no text (perhaps only images)")
    heading = _metadata(package)
    if heading:
        shift = len(heading) + 2
        moved = tuple((offset + shift, level, words) for offset, level, words in pages[0].headings)
        pages[0] = Page(f"{heading}\n\n{pages[0].text}", None, moved)
    return Document(pages, tuple(warnings))
