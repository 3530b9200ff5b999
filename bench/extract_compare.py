"""DOCX, ODT, EPUB and HTML text: our extractors against the libraries (part 2 of
bench/library_compare.py, which runs it and writes the results).

Documents whose text is known: one report (headings, paragraphs, a bulleted and a numbered
list, a table, a footnote) written as a DOCX by hand (plus what Word writes and
python-docx does not read: an inserted run, a deleted run, a content control, a text box),
as a DOCX by python-docx, as an ODT by odfpy and by docutils' rst2odt, as an EPUB by
ebooklib, and as an HTML page inside a site's navigation, header and footer. Real pages
without a known text (the HTML manuals on this machine) give speed and failures only.

Fidelity: the F1 of the longest common word sequence between the known text and the
extracted one (so order counts), and structural checks: each heading on its own line,
each list item starting a line, each table row on one line with its cells in order, the
footnote present, deleted or hidden text absent.

Hostile files run one per child process (2 GB address-space limit, 60 s timeout): a
truncated archive, a zip bomb, billion laughs and quadratic entity expansion, an expansion
that stays within expat's own limit, an external entity naming a local file, a 50 MB
attribute, 100,000 nested elements.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --- the known content --------------------------------------------------------------------

TITLE = "Quarterly field report"
HEADINGS = ["Methods", "Results", "Next steps"]
INTRO = (
    "The survey team visited eleven wetland sites between March and May, counting nesting "
    "herons and measuring water depth at each station."
)
METHODS = "Each site was walked along a fixed transect; observers recorded every nest within thirty metres."
BULLETS = [
    "Binoculars calibrated before each visit",
    "Depth gauges read at dawn",
    "Photographs kept by station",
]
STEPS = ["Arrive before sunrise", "Walk the transect twice", "Compare tallies with the partner"]
TABLE = [["Site", "Nests", "Depth"], ["Marsh Creek", "42", "1.3 m"], ["Willow Bend", "17", "0.8 m"]]
NOTED = "Nest counts rose sharply at Marsh Creek after the spring floods."
NOTE = "Floods measured by the county gauge on 14 April."
CLOSING = "The team will repeat the count in autumn and add two coastal lagoons to the route."
# Word-only extras in the hand-written DOCX.
INSERTED = ("Counts were checked", " twice", " by a second observer.")
DELETED = "obsoletewordthatwasdeleted"
CONTROL = "Prepared by the wetland monitoring group."
TEXTBOX = "Sidebar: herons nest in colonies called heronries."
# Boilerplate and hidden parts of the HTML page.
SCRIPT = "trackingscriptvariable"
NAV = ["Home", "Reports", "Contact"]
FOOTER = "Copyright 2026 Wetland Trust. All rights reserved."


def known_text(*, note: bool = True, word_extras: bool = False) -> str:
    blocks = [TITLE, INTRO, HEADINGS[0], METHODS, "\n".join(BULLETS), "\n".join(STEPS), HEADINGS[1]]
    blocks.append("\n".join("\t".join(row) for row in TABLE))
    blocks.append(NOTED)
    if word_extras:
        blocks += ["".join(INSERTED), CONTROL, TEXTBOX]
    blocks += [HEADINGS[2], CLOSING]
    if note:
        blocks.append(NOTE)
    return "\n\n".join(blocks)


def checks_for(*, note: bool = True, word_extras: bool = False, html: bool = False) -> list[tuple[str, str]]:
    """(what, regex that must match, or that must not when it starts with "!")."""
    line_start = r"(?m)^[ \t]*(?:[-*•·◦▪]|\d+[.)])?[ \t]*"
    found = [("heading on its own line", rf"(?m)^[ \t#]*{re.escape(h)}[ \t]*$") for h in [TITLE, *HEADINGS]]
    found += [("list item starts a line", line_start + re.escape(item)) for item in BULLETS + STEPS]
    found += [("table row on one line", r"[ \t|]+".join(map(re.escape, row))) for row in TABLE]
    if note:
        found.append(("footnote text present", re.escape(NOTE)))
    if word_extras:
        found += [
            ("inserted text present", re.escape("".join(INSERTED))),
            ("deleted text absent", "!" + DELETED),
            ("content control present", re.escape(CONTROL)),
            ("text box present", re.escape(TEXTBOX)),
        ]
    if html:
        found += [("script absent", "!" + SCRIPT)]
    return found


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _zip(members: dict[str, str | bytes], stored_first: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if stored_first:
            archive.writestr(zipfile.ZipInfo(stored_first), members[stored_first], zipfile.ZIP_STORED)
        for name, content in members.items():
            if name != stored_first:
                archive.writestr(name, content)
    return out.getvalue()


# --- writers of the known content ---------------------------------------------------------

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_by_hand() -> bytes:
    """The report as Word lays it out, written here: heading styles, numbered paragraphs,
    a table, a footnote, an insertion and a deletion (tracked changes), a content control
    and a text box."""

    def para(text: str, style: str | None = None, num: int | None = None) -> str:
        props = ""
        if style or num is not None:
            inner = f'<w:pStyle w:val="{style}"/>' if style else ""
            if num is not None:
                inner += f'<w:numPr><w:ilvl w:val="0"/><w:numId w:val="{num}"/></w:numPr>'
            props = f"<w:pPr>{inner}</w:pPr>"
        return f"<w:p>{props}<w:r><w:t xml:space='preserve'>{_esc(text)}</w:t></w:r></w:p>"

    def cell(text: str) -> str:
        return f'<w:tc><w:tcPr><w:tcW w:w="2000" w:type="dxa"/></w:tcPr>{para(text)}</w:tc>'

    body = [para(TITLE, "Title"), para(INTRO), para(HEADINGS[0], "Heading1"), para(METHODS)]
    body += [para(item, "ListParagraph", 1) for item in BULLETS]
    body += [para(item, "ListParagraph", 2) for item in STEPS]
    body.append(para(HEADINGS[1], "Heading1"))
    rows = "".join(f"<w:tr>{''.join(cell(c) for c in row)}</w:tr>" for row in TABLE)
    body.append(f'<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr>{rows}</w:tbl>')
    body.append(
        f"<w:p><w:r><w:t>{_esc(NOTED)}</w:t></w:r>"
        '<w:r><w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr><w:footnoteReference w:id="1"/></w:r></w:p>'
    )
    before, inserted, after = INSERTED
    body.append(
        f"<w:p><w:r><w:t>{before}</w:t></w:r>"
        f'<w:ins w:id="5" w:author="A" w:date="2026-01-01T00:00:00Z">'
        f'<w:r><w:t xml:space="preserve">{inserted}'
        f'</w:t></w:r></w:ins><w:del w:id="6" w:author="A" w:date="2026-01-01T00:00:00Z">'
        f"<w:r><w:delText> {DELETED}"
        f'</w:delText></w:r></w:del><w:r><w:t xml:space="preserve">{after}</w:t></w:r></w:p>'
    )
    body.append(
        '<w:sdt><w:sdtPr><w:alias w:val="Author"/></w:sdtPr>'
        f"<w:sdtContent>{para(CONTROL)}</w:sdtContent></w:sdt>"
    )
    body.append(
        '<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" style="width:200pt;height:50pt">'
        f"<v:textbox><w:txbxContent>{para(TEXTBOX)}</w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
    )
    body += [para(HEADINGS[2], "Heading1"), para(CLOSING)]
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f"<w:body>{''.join(body)}<w:sectPr/></w:body></w:document>"
    )
    styles = (
        f'<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="{_W}">'
        + "".join(
            f'<w:style w:type="paragraph" w:styleId="{sid}"><w:name w:val="{name}"/></w:style>'
            for sid, name in [
                ("Title", "Title"),
                ("Heading1", "heading 1"),
                ("ListParagraph", "List Paragraph"),
            ]
        )
        + "</w:styles>"
    )
    footnotes = (
        f'<?xml version="1.0" encoding="UTF-8"?><w:footnotes xmlns:w="{_W}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        f'<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t xml:space="preserve"> {NOTE}'
        "</w:t></w:r></w:p></w:footnote></w:footnotes>"
    )
    numbering = (
        f'<?xml version="1.0" encoding="UTF-8"?><w:numbering xmlns:w="{_W}">'
        '<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0">'
        '<w:numFmt w:val="bullet"/><w:lvlText w:val="•"/>'
        '</w:lvl></w:abstractNum><w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:start w:val="1"/>'
        '<w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/></w:lvl></w:abstractNum>'
        '<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>'
        '<w:num w:numId="2"><w:abstractNumId w:val="1"/>'
        "</w:num></w:numbering>"
    )
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    return _zip(
        {
            "[Content_Types].xml": (
                '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" '
                'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                f'<Override PartName="/word/document.xml" ContentType="{ct}.document.main+xml"/>'
                f'<Override PartName="/word/styles.xml" ContentType="{ct}.styles+xml"/>'
                f'<Override PartName="/word/footnotes.xml" ContentType="{ct}.footnotes+xml"/>'
                f'<Override PartName="/word/numbering.xml" ContentType="{ct}.numbering+xml"/></Types>'
            ),
            "_rels/.rels": (
                '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="word/document.xml"/>'
                "</Relationships>"
            ),
            "word/_rels/document.xml.rels": (
                '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="rId1" Type="{rel}/styles" Target="styles.xml"/>'
                f'<Relationship Id="rId2" Type="{rel}/footnotes" Target="footnotes.xml"/>'
                f'<Relationship Id="rId3" Type="{rel}/numbering" Target="numbering.xml"/></Relationships>'
            ),
            "word/document.xml": document,
            "word/styles.xml": styles,
            "word/footnotes.xml": footnotes,
            "word/numbering.xml": numbering,
        }
    )


def docx_by_python_docx() -> bytes:
    """The report through python-docx's own template (which has no footnote API)."""
    import docx

    document = docx.Document()
    document.add_heading(TITLE, 0)
    document.add_paragraph(INTRO)
    document.add_heading(HEADINGS[0], 1)
    document.add_paragraph(METHODS)
    for item in BULLETS:
        document.add_paragraph(item, style="List Bullet")
    for item in STEPS:
        document.add_paragraph(item, style="List Number")
    document.add_heading(HEADINGS[1], 1)
    table = document.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    for r, row in enumerate(TABLE):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_paragraph(NOTED)
    document.add_heading(HEADINGS[2], 1)
    document.add_paragraph(CLOSING)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt_by_odfpy() -> bytes:
    from odf import opendocument, table, text

    document = opendocument.OpenDocumentText()
    body = document.text
    body.addElement(text.H(outlinelevel=1, text=TITLE))
    body.addElement(text.P(text=INTRO))
    body.addElement(text.H(outlinelevel=2, text=HEADINGS[0]))
    body.addElement(text.P(text=METHODS))
    for items in (BULLETS, STEPS):
        listing = text.List()
        for item in items:
            entry = text.ListItem()
            entry.addElement(text.P(text=item))
            listing.addElement(entry)
        body.addElement(listing)
    body.addElement(text.H(outlinelevel=2, text=HEADINGS[1]))
    grid = table.Table(name="Sites")
    grid.addElement(table.TableColumn(numbercolumnsrepeated=len(TABLE[0])))
    for row in TABLE:
        line = table.TableRow()
        for value in row:
            box = table.TableCell()
            box.addElement(text.P(text=value))
            line.addElement(box)
        grid.addElement(line)
    body.addElement(grid)
    paragraph = text.P(text=NOTED)
    note = text.Note(id="ftn1", noteclass="footnote")
    note.addElement(text.NoteCitation(text="1"))
    note_body = text.NoteBody()
    note_body.addElement(text.P(text=NOTE))
    note.addElement(note_body)
    paragraph.addElement(note)
    body.addElement(paragraph)
    body.addElement(text.H(outlinelevel=2, text=HEADINGS[2]))
    body.addElement(text.P(text=CLOSING))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def _rst_python() -> Path | None:
    """A Python that has docutils (its ODF writer): this one, else the system's python3."""
    for candidate in (sys.executable, shutil.which("python3")):
        if candidate and subprocess.run(
            [candidate, "-c", "import docutils.writers.odf_odt"], capture_output=True, check=False
        ).returncode == 0:
            return Path(candidate)
    return None


def odt_by_rst2odt() -> bytes | None:
    """The report written by docutils' ODF writer (another producer's layout), when a
    Python with docutils is on this machine."""
    source = "\n".join(
        [
            "=" * len(TITLE), TITLE, "=" * len(TITLE), "", INTRO, "",
            HEADINGS[0], "-" * len(HEADINGS[0]), "", METHODS, "",
            *[f"* {item}" for item in BULLETS], "",
            *[f"{n}. {item}" for n, item in enumerate(STEPS, 1)], "",
            HEADINGS[1], "-" * len(HEADINGS[1]), "",
            ".. list-table::", "",
            *[line for row in TABLE for line in [f"   * - {row[0]}", *[f"     - {v}" for v in row[1:]]]], "",
            f"{NOTED} [#]_", "",
            HEADINGS[2], "-" * len(HEADINGS[2]), "", CLOSING, "",
            f".. [#] {NOTE}", "",
        ]
    )  # fmt: skip
    rst_python = _rst_python()
    if rst_python is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        rst, odt = Path(scratch, "report.rst"), Path(scratch, "report.odt")
        rst.write_text(source)
        script = (
            "import sys; from docutils.core import publish_file; "
            "publish_file(source_path=sys.argv[1], destination_path=sys.argv[2], writer_name='odt')"
        )
        done = subprocess.run(
            [str(rst_python), "-c", script, str(rst), str(odt)], capture_output=True, check=False
        )
        return odt.read_bytes() if done.returncode == 0 and odt.exists() else None


def _chapter_html(blocks: list[str]) -> str:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title>c</title></head><body>{"".join(blocks)}</body></html>'


def _report_html() -> list[str]:
    rows = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in TABLE)
    return [
        f"<h1>{TITLE}</h1>", f"<p>{INTRO}</p>", f"<h2>{HEADINGS[0]}</h2>", f"<p>{METHODS}</p>",
        "<ul>" + "".join(f"<li>{i}</li>" for i in BULLETS) + "</ul>",
        "<ol>" + "".join(f"<li>{i}</li>" for i in STEPS) + "</ol>",
        f"<h2>{HEADINGS[1]}</h2>", f"<table>{rows}</table>",
        f'<p>{NOTED}<sup><a href="#n1">1</a></sup></p>',
        f"<h2>{HEADINGS[2]}</h2>", f"<p>{CLOSING}</p>",
        f'<aside id="n1"><p>{NOTE}</p></aside>',
    ]  # fmt: skip


def epub_by_ebooklib() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("report-1")
    book.set_title(TITLE)
    book.set_language("en")
    blocks = _report_html()
    split = blocks.index(f"<h2>{HEADINGS[1]}</h2>")
    chapters = []
    for number, part in enumerate((blocks[:split], blocks[split:]), 1):
        chapter = epub.EpubHtml(title=f"Part {number}", file_name=f"part{number}.xhtml", lang="en")
        chapter.content = "".join(part)
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = chapters
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "report.epub")
        epub.write_epub(str(path), book)
        return path.read_bytes()


def html_page() -> bytes:
    nav = "<nav><ul>" + "".join(f'<li><a href="/{n.lower()}">{n}</a></li>' for n in NAV) + "</ul></nav>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report</title>"
        f"<style>body {{ font-family: serif }}</style><script>var {SCRIPT} = 1;</script></head>"
        f"<body><header>{nav}</header><main><article>{''.join(_report_html())}</article></main>"
        f"<footer><p>{FOOTER}</p></footer></body></html>"
    ).encode()


def html_known_text() -> str:
    """What a reader sees on the page: the navigation, the report, the footer."""
    return "\n\n".join(["Report", "\n".join(NAV), known_text(), FOOTER])


# --- the extractors -----------------------------------------------------------------------


def ours(path: Path) -> str:
    from localsearch.core import extract

    document = extract.extract(path, path.read_bytes())
    return "\n\n".join(page.text for page in document.pages)


def by_python_docx(path: Path) -> str:
    import docx
    from docx.table import Table

    document = docx.Document(str(path))
    blocks = []
    for item in document.iter_inner_content():  # paragraphs and tables in body order
        if isinstance(item, Table):
            blocks += ["\t".join(cell.text for cell in row.cells) for row in item.rows]
        else:
            blocks.append(item.text)
    return "\n\n".join(b for b in blocks if b.strip())


def by_odfpy(path: Path) -> str:
    from odf import opendocument, teletype

    document = opendocument.load(str(path))
    blocks: list[str] = []

    def walk(node: Any, row: list[str] | None) -> None:
        for child in node.childNodes:
            name = getattr(child, "qname", (None, None))[1]
            if name == "table-row":
                cells: list[str] = []
                walk(child, cells)
                blocks.append("\t".join(cells))
            elif name in ("p", "h"):
                words = teletype.extractText(child)
                if row is not None:
                    row.append(words)
                else:
                    blocks.append(words)
            else:
                walk(child, row)

    walk(document.text, None)
    return "\n\n".join(b for b in blocks if b.strip())


def _html_by_lxml(markup: bytes) -> str:
    import lxml.html

    root = lxml.html.document_fromstring(markup)
    for hidden in root.xpath("//script|//style|//noscript|//template"):
        hidden.drop_tree()
    blocks = []
    for element in root.iter("title", "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "pre", "dt", "dd"):
        if element.tag == "tr":
            blocks.append("\t".join(cell.text_content().strip() for cell in element.iter("td", "th")))
        elif element.getparent() is not None and element.getparent().tag != "li":
            blocks.append(" ".join(element.text_content().split()))
    return "\n\n".join(b for b in blocks if b.strip())


def _html_by_selectolax(markup: bytes) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    tree.strip_tags(["script", "style", "noscript", "template"])
    blocks = []
    title = tree.css_first("title")
    if title is not None:
        blocks.append(title.text(strip=True))
    if tree.body is not None:
        blocks.append(tree.body.text(separator="\n", strip=True))
    return "\n\n".join(blocks)


def by_lxml(path: Path) -> str:
    return _html_by_lxml(path.read_bytes())


def by_selectolax(path: Path) -> str:
    return _html_by_selectolax(path.read_bytes())


def by_trafilatura(path: Path) -> str:
    import trafilatura

    found = trafilatura.extract(
        path.read_bytes(), include_tables=True, include_comments=False, favor_recall=True
    )
    return found or ""


def by_ebooklib(path: Path) -> str:
    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(str(path), options={"ignore_ncx": True})
    parts = [title for title, _attributes in book.get_metadata("DC", "title")]  # as ours, the title first
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT:
            parts.append(_html_by_lxml(item.get_content()))
    return "\n\n".join(parts)


EXTRACTORS: dict[str, dict[str, Callable[[Path], str]]] = {
    "docx": {"ours": ours, "python-docx": by_python_docx},
    "odt": {"ours": ours, "odfpy": by_odfpy},
    "epub": {"ours": ours, "ebooklib+lxml": by_ebooklib},
    "html": {"ours": ours, "lxml": by_lxml, "selectolax": by_selectolax, "trafilatura": by_trafilatura},
}


# --- scoring ------------------------------------------------------------------------------

_WORDS = re.compile(r"\w+")
# A list's bullets and numbers: some extractors write them, the known text has none.
_MARKERS = re.compile(r"(?m)^[ \t]*(?:[-*•·◦▪]|\d+[.)])[ \t]+")


def fidelity(expected: str, got: str) -> float:
    """F1 of the longest common subsequence of words: missing, extra and reordered words all cost."""
    a = [w.lower() for w in _WORDS.findall(_MARKERS.sub("", expected))]
    b = [w.lower() for w in _WORDS.findall(_MARKERS.sub("", got))]
    if not a or not b:
        return 0.0
    common = sum(
        block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    )
    precision, recall = common / len(b), common / len(a)
    return 0.0 if common == 0 else 2 * precision * recall / (precision + recall)


def passed_checks(text: str, checks: list[tuple[str, str]]) -> list[str]:
    """The checks that fail."""
    failed = []
    for what, pattern in checks:
        if pattern.startswith("!"):
            if re.search(pattern[1:], text):
                failed.append(what)
        elif not re.search(pattern, text):
            failed.append(what)
    return failed


def known_corpus() -> list[dict[str, Any]]:
    """Documents with the text a reader sees, and the checks that apply."""
    corpus = [
        {
            "name": "report.docx (by hand, Word's layout)",
            "kind": "docx",
            "data": docx_by_hand(),
            "expected": known_text(word_extras=True),
            "checks": checks_for(word_extras=True),
        },
        {
            "name": "report.docx (python-docx)",
            "kind": "docx",
            "data": docx_by_python_docx(),
            "expected": known_text(note=False),
            "checks": checks_for(note=False),
        },
        {
            "name": "report.odt (odfpy)",
            "kind": "odt",
            "data": odt_by_odfpy(),
            "expected": known_text(),
            "checks": checks_for(),
        },
        {
            "name": "report.epub (ebooklib)",
            "kind": "epub",
            "data": epub_by_ebooklib(),
            "expected": known_text(),
            "checks": checks_for(),
        },
        {
            "name": "report.html (with site navigation)",
            "kind": "html",
            "data": html_page(),
            "expected": html_known_text(),
            # The article alone, without the site's navigation and footer: what trafilatura aims at.
            "expected_main": known_text(),
            "checks": checks_for(html=True),
        },
    ]
    rst = odt_by_rst2odt()
    if rst is not None:
        corpus.insert(
            3,
            {
                "name": "report.odt (docutils rst2odt)",
                "kind": "odt",
                "data": rst,
                "expected": known_text(),
                "checks": checks_for(),
            },
        )
    return corpus


def real_html(limit: int = 60) -> list[Path]:
    """HTML manuals on this machine (Debian's docs, Rust's book pages): real pages with
    navigation, but no known text."""
    found: list[Path] = []
    for root in (Path("/usr/share/doc"), Path.home() / ".rustup/toolchains"):
        if root.is_dir():
            pages = sorted(p for p in root.rglob("*.html") if p.stat().st_size > 2000)
            step = max(1, len(pages) // (limit // 2))
            found += pages[::step][: limit // 2]
    return found


def _shown(path: Path) -> str:
    """A page as a result names it: under the home folder as ~/..., so no result names
    this machine's user."""
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


# --- hostile files ------------------------------------------------------------------------

_LAUGHS = (
    '<!DOCTYPE d [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    + "]>"
)
_QUADRATIC = '<!DOCTYPE d [<!ENTITY big "' + "x" * 50_000 + '">]>'
_EXTERNAL = '<!DOCTYPE d [<!ENTITY ext SYSTEM "file:///etc/hostname">]>'
# Within expat's own limit (output at most 100 times the input once past 8 MB): 60 bytes
# per 4-byte reference, 2 million references, 120 MB of text from a 40 kB file.
_WIDE = '<!DOCTYPE d [<!ENTITY w "' + "x" * 60 + '">]>'


def _docx_with(document: bytes) -> bytes:
    """The hand-written report's package (which python-docx opens) with another main part."""
    with zipfile.ZipFile(io.BytesIO(docx_by_hand())) as original:
        members: dict[str, str | bytes] = {n: original.read(n) for n in original.namelist()}
    members["word/document.xml"] = document
    return _zip(members)


def _w_doc(body: str, doctype: str = "") -> bytes:
    document = (
        f'<?xml version="1.0"?>{doctype}<w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    )
    return document.encode()


def _odt_with(body: str, doctype: str = "") -> bytes:
    content = (
        f'<?xml version="1.0"?>{doctype}<office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        f"{body}</office:text></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    return _zip(
        {
            "mimetype": "application/vnd.oasis.opendocument.text",
            "content.xml": content,
            "META-INF/manifest.xml": manifest,
        },
        stored_first="mimetype",
    )


def _epub_with(opf_doctype: str = "", chapter: str = "<p>Lava flows.</p>") -> bytes:
    container = (
        '<?xml version="1.0"?>'
        '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    title = "Book"  # the entity the doctype declares, used in the title
    for marker, reference in (
        ("l9", "&l9;"),
        ("big", "&big;" * 2000),
        ("ext", "&ext;"),
        ("ENTITY w ", "&w;" * 2_000_000),
    ):
        if marker in opf_doctype:
            title = reference
    opf = (
        f'<?xml version="1.0"?>{opf_doctype}'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x</dc:identifier>'
        f"<dc:title>{title}</dc:title><dc:language>en</dc:language></metadata>"
        '<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/></spine></package>'
    )
    return _zip(
        {
            "mimetype": "application/epub+zip",
            "META-INF/container.xml": container,
            "OEBPS/content.opf": opf,
            "OEBPS/c1.xhtml": _chapter_html([chapter]),
        },
        stored_first="mimetype",
    )


def _streamed_zip(kind: str, unpacked: int) -> bytes:
    """A valid archive whose main part inflates to `unpacked` bytes of one letter."""
    base = {"docx": _docx_with(_w_doc("<w:p/>")), "odt": _odt_with("<text:p/>"), "epub": _epub_with()}[kind]
    member = {"docx": "word/document.xml", "odt": "content.xml", "epub": "OEBPS/c1.xhtml"}[kind]
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as original,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for info in original.infolist():
            if info.filename != member:
                archive.writestr(info, original.read(info))
        with archive.open(member, "w", force_zip64=True) as handle:
            block = b"a" * (1 << 20)
            for _ in range(unpacked // len(block)):
                handle.write(block)
    return out.getvalue()


def hostile_corpus() -> list[dict[str, Any]]:
    report = {"docx": docx_by_hand(), "odt": odt_by_odfpy(), "epub": epub_by_ebooklib(), "html": html_page()}
    huge = "a" * (50 * 1024 * 1024)
    deep = 100_000
    cases: list[dict[str, Any]] = []
    for kind in ("docx", "odt", "epub", "html"):
        cases.append({"case": "truncated", "kind": kind, "data": report[kind][: len(report[kind]) // 2]})
    for kind in ("docx", "odt", "epub"):
        cases.append(
            {"case": "zip bomb (1 GB of one letter)", "kind": kind, "data": _streamed_zip(kind, 1024 << 20)}
        )
    for name, doctype, ref in (
        ("billion laughs", _LAUGHS, "&l9;"),
        ("quadratic blowup", _QUADRATIC, "&big;" * 20_000),
        ("external entity (local file)", _EXTERNAL, "&ext;"),
        ("expansion within expat's limit", _WIDE, "&w;" * 2_000_000),
    ):
        cases.append(
            {
                "case": name,
                "kind": "docx",
                "data": _docx_with(_w_doc(f"<w:p><w:r><w:t>{ref}</w:t></w:r></w:p>", doctype)),
            }
        )
        cases.append({"case": name, "kind": "odt", "data": _odt_with(f"<text:p>{ref}</text:p>", doctype)})
        cases.append({"case": name, "kind": "epub", "data": _epub_with(doctype)})
        cases.append(
            {
                "case": name,
                "kind": "html",
                "data": f"{doctype}<html><body><p>{ref}</p></body></html>".encode(),
            }
        )
    cases.append(
        {
            "case": "50 MB attribute",
            "kind": "docx",
            "data": _docx_with(_w_doc(f'<w:p w:x="{huge}"><w:r><w:t>a</w:t></w:r></w:p>')),
        }
    )
    cases.append(
        {"case": "50 MB attribute", "kind": "odt", "data": _odt_with(f'<text:p text:x="{huge}">a</text:p>')}
    )
    cases.append(
        {
            "case": "50 MB attribute",
            "kind": "html",
            "data": f'<html><body><p title="{huge}">a</p></body></html>'.encode(),
        }
    )
    cases.append(
        {
            "case": "100,000 nested elements",
            "kind": "docx",
            "data": _docx_with(
                _w_doc("<w:sdt>" * deep + "<w:p><w:r><w:t>a</w:t></w:r></w:p>" + "</w:sdt>" * deep)
            ),
        }
    )
    cases.append(
        {
            "case": "100,000 nested elements",
            "kind": "odt",
            "data": _odt_with("<text:span>" * deep + "a" + "</text:span>" * deep),
        }
    )
    cases.append(
        {
            "case": "100,000 nested elements",
            "kind": "html",
            "data": ("<div>" * deep + "a" + "</div>" * deep).encode(),
        }
    )
    return cases


def _child(extractor: str, kind: str, path: Path) -> dict[str, Any]:
    """Run one extractor on one file in a child process with limits; its verdict."""
    script = (
        "import resource, sys, json, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
        "import extract_compare as ec\n"
        "function = ec.EXTRACTORS[sys.argv[1]][sys.argv[2]]\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    text = function(__import__('pathlib').Path(sys.argv[3]))\n"
        "    out = {'outcome': 'text', 'chars': len(text), 'head': text[:80]}\n"
        "except MemoryError:\n"
        "    out = {'outcome': 'out of memory'}\n"
        "except RecursionError:\n"
        "    out = {'outcome': 'crash', 'error': 'RecursionError'}\n"
        "except Exception as exc:\n"
        "    clean = type(exc).__name__ == 'ExtractionError'\n"
        "    error = f'{type(exc).__name__}: {str(exc)[:160]}'\n"
        "    out = {'outcome': 'refused' if clean else 'exception', 'error': error}\n"
        "out['seconds'] = round(time.perf_counter() - start, 3)\n"
        # VmHWM starts afresh at exec, unlike ru_maxrss, which keeps the parent's peak.
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "out['peak_rss_mb'] = round(int(peak) / 1024)\n"
        "print(json.dumps(out))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, kind, extractor, str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"outcome": "timeout (60 s)"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"outcome": "crash", "error": f"exit {done.returncode}: {done.stderr.strip()[-200:]}"}
    return dict(json.loads(lines[-1]))


def run_hostile() -> list[dict[str, Any]]:
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="libcompare-hostile-") as scratch:
        for number, case in enumerate(hostile_corpus()):
            path = Path(scratch, f"case{number}.{case['kind']}")
            path.write_bytes(case["data"])
            row: dict[str, Any] = {
                "case": case["case"],
                "kind": case["kind"],
                "bytes": len(case["data"]),
                "results": {},
            }
            for name in EXTRACTORS[case["kind"]]:
                verdict = _child(name, case["kind"], path)
                if hostname and hostname in verdict.get("head", ""):
                    verdict["outcome"] = "leaked a local file"
                row["results"][name] = verdict
            rows.append(row)
            verdicts = "  ".join(f"{n}={v['outcome']}" for n, v in row["results"].items())
            print(f"  hostile: {case['kind']:5} {case['case']:32} {verdicts}", flush=True)
    return rows


# --- the run ------------------------------------------------------------------------------


def run(repeats: int) -> dict[str, Any]:
    known = []
    with tempfile.TemporaryDirectory(prefix="libcompare-docs-") as scratch:
        for number, doc in enumerate(known_corpus()):
            path = Path(scratch, f"doc{number}.{doc['kind']}")
            path.write_bytes(doc["data"])
            row: dict[str, Any] = {
                "document": doc["name"],
                "kind": doc["kind"],
                "bytes": len(doc["data"]),
                "results": {},
            }
            times: dict[str, list[float]] = {name: [] for name in EXTRACTORS[doc["kind"]]}
            texts: dict[str, str | None] = {}
            errors: dict[str, str] = {}
            for _ in range(repeats):
                for name, function in EXTRACTORS[doc["kind"]].items():
                    start = time.perf_counter()
                    try:
                        texts[name] = function(path)
                    except Exception as exc:
                        texts[name], errors[name] = None, f"{type(exc).__name__}: {exc}"
                    times[name].append((time.perf_counter() - start) * 1000)
            for name, text in texts.items():
                result: dict[str, Any] = {
                    "ms_median": statistics.median(times[name]),
                    "ms_min": min(times[name]),
                    "ms_max": max(times[name]),
                }
                if text is None:
                    result.update(
                        error=errors[name], fidelity=0.0, failed_checks=[c for c, _ in doc["checks"]]
                    )
                else:
                    result.update(
                        fidelity=round(fidelity(doc["expected"], text), 4),
                        **(
                            {"main_fidelity": round(fidelity(doc["expected_main"], text), 4)}
                            if "expected_main" in doc
                            else {}
                        ),
                        failed_checks=passed_checks(text, doc["checks"]),
                        text=text,
                    )
                result["checks"] = len(doc["checks"])
                row["results"][name] = result
            known.append(row)
        real = []
        for path in real_html():
            entry: dict[str, Any] = {"page": _shown(path), "bytes": path.stat().st_size, "results": {}}
            texts = {}
            # The fastest of a few interleaved runs: on a shared machine the others measure the load.
            for _ in range(3):
                for name, function in EXTRACTORS["html"].items():
                    start = time.perf_counter()
                    try:
                        text = function(path)
                        result = {"chars": len(text)}
                        texts[name] = text
                    except Exception as exc:
                        result = {"error": f"{type(exc).__name__}: {exc}"}
                    took = (time.perf_counter() - start) * 1000
                    result["ms"] = min(took, entry["results"].get(name, {}).get("ms", took))
                    entry["results"][name] = result
            if "ours" in texts:
                for name, text in texts.items():
                    # How much of our full text each library keeps (trafilatura keeps the main part only).
                    entry["results"][name]["f1_to_ours"] = round(fidelity(texts["ours"], text), 4)
            real.append(entry)
    summary = summarise(known, real)
    return {"known": known, "real_html": real, "summary": summary, "hostile": run_hostile()}


def summarise(known: list[dict[str, Any]], real: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {}
    for row in known:
        for name, result in row["results"].items():
            entry = table.setdefault(
                f"{row['kind']}/{name}",
                {
                    "documents": 0,
                    "fidelity": [],
                    "checks": 0,
                    "passed": 0,
                    "ms": [],
                    "ms_min": [],
                    "failures": 0,
                },
            )
            entry["documents"] += 1
            entry["fidelity"].append(result["fidelity"])
            entry["checks"] += result["checks"]
            entry["passed"] += result["checks"] - len(result["failed_checks"])
            entry["ms"].append(result["ms_median"])
            entry["ms_min"].append(result["ms_min"])
            entry["failures"] += "error" in result
    for entry in table.values():
        entry["fidelity"] = round(statistics.mean(entry["fidelity"]), 4)
        entry["ms"] = round(statistics.mean(entry["ms"]), 2)  # the mean over documents of the median
        entry["ms_min"] = round(statistics.mean(entry["ms_min"]), 2)  # and of the fastest run
    pages: dict[str, dict[str, Any]] = {}
    for entry in real:
        for name, result in entry["results"].items():
            total = pages.setdefault(name, {"pages": 0, "ms": [], "failures": 0, "f1_to_ours": []})
            total["pages"] += 1
            total["ms"].append(result["ms"])
            total["failures"] += "error" in result
            if "f1_to_ours" in result:
                total["f1_to_ours"].append(result["f1_to_ours"])
    for total in pages.values():
        total["ms_median"] = round(statistics.median(total.pop("ms")), 2) if total["pages"] else None
        scores = total.pop("f1_to_ours")
        total["f1_to_ours_mean"] = round(statistics.mean(scores), 4) if scores else None
    return {"known": table, "real_html": pages}


def print_table(result: dict[str, Any]) -> None:
    print("\nextraction: documents with a known text (fidelity = word-sequence F1)")
    header = f"{'kind/extractor':28} {'docs':>4} {'fidelity':>8} {'checks':>9} {'ms median':>9} {'ms min':>7}"
    print(f"{header} {'failures':>8}")
    for name, entry in result["summary"]["known"].items():
        checks = f"{entry['passed']}/{entry['checks']}"
        print(
            f"{name:28} {entry['documents']:>4} {entry['fidelity']:>8.3f} {checks:>9} "
            f"{entry['ms']:>9.2f} {entry['ms_min']:>7.2f} {entry['failures']:>8}"
        )
    print("\nreal HTML pages (no known text): ms = median over pages of the fastest of 3 runs;")
    print("F1 to our text = how much of our full text each keeps")
    for name, total in result["summary"]["real_html"].items():
        print(
            f"html/{name:23} {total['pages']:>4} pages {total['ms_median']:>8} ms "
            f"{total['failures']:>3} failed  F1 {total['f1_to_ours_mean']}"
        )
    print("\nhostile files")
    for row in result["hostile"]:
        verdicts = "  ".join(f"{n}: {v['outcome']}" for n, v in row["results"].items())
        print(f"{row['kind']:5} {row['case']:32} {verdicts}")
