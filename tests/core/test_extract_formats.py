"""HTML, DOCX, ODT, EPUB and e-mail extraction. Every input is built here from literal text."""

from __future__ import annotations

import contextlib
import io
import random
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from localsearch.core import extract
from localsearch.core.extract import office
from localsearch.errors import ExtractionError


def _text(name: str, data: bytes) -> str:
    return "\n\n".join(p.text for p in extract.extract(Path(name), data).pages)


def _zip(members: dict[str, str | bytes], *, stored_first: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if stored_first is not None:
            archive.writestr(zipfile.ZipInfo(stored_first), members[stored_first], zipfile.ZIP_STORED)
        for name, content in members.items():
            if name != stored_first:
                archive.writestr(name, content)
    return buffer.getvalue()


def _in_order(text: str, *parts: str) -> None:
    positions = [text.index(p) for p in parts]
    assert positions == sorted(positions), text


# --- HTML ---------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head>
  <meta charset="utf-8">
  <title>Garden   notes</title>
  <style>body { color: red }</style>
  <script>var secret = "do not index";</script>
</head>
<body>
  <noscript>Enable JavaScript</noscript>
  <h1>Tomatoes</h1>
  <p>Water them <b>deeply</b>
     once a week &amp; mulch &lt;well&gt;.</p>
  <div>Caf&eacute; &#8364;5 &nbsp;each</div>
  <ul><li>Basil</li><li>Mint</li></ul>
  <ol start="3"><li>Third</li><li>Fourth</li></ol>
  <p>Line one<br>Line two</p>
  <table><tr><th>Plant</th><th>Days</th></tr><tr><td>Bean</td><td>60</td></tr></table>
  <template><p>Template text</p></template>
  <pre>  indented
    code</pre>
</body></html>
"""


def test_html_visible_text_in_order_with_paragraphs() -> None:
    text = _text("page.html", PAGE.encode())
    assert text.startswith("Garden notes\n\nTomatoes\n\nWater them deeply once a week & mulch <well>.")
    assert "Café €5 each" in text
    assert "• Basil\n• Mint" in text
    assert "3. Third\n4. Fourth" in text
    assert "Line one\nLine two" in text
    assert "Plant\tDays\n\nBean\t60" in text
    assert "  indented\n    code" in text
    _in_order(text, "Tomatoes", "Water", "Café", "Basil", "Third", "Line one", "Plant", "indented")


def test_html_hidden_content_is_dropped() -> None:
    text = _text("page.htm", PAGE.encode())
    for hidden in ("color: red", "secret", "do not index", "Enable JavaScript", "Template text", "charset"):
        assert hidden not in text


def test_html_meta_charset_decides_the_encoding() -> None:
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=koi8-r"></head>'
    page += "<body><p>Привет, мир! Это проверка кодировки страницы.</p></body></html>"
    assert _text("ru.html", page.encode("koi8-r")) == "Привет, мир! Это проверка кодировки страницы."


def test_html_meta_charset_in_a_legacy_western_page() -> None:
    page = '<meta charset="iso-8859-1"><p>Grüße aus Köln – “schön”</p>'
    # Browsers read ISO-8859-1 as Windows-1252, which has the dash and quotes.
    assert _text("de.html", page.encode("cp1252")) == "Grüße aus Köln – “schön”"


def test_html_utf8_wins_over_a_stale_declaration() -> None:
    page = '<meta charset="windows-1252"><p>Grüße aus Köln</p>'
    assert _text("a.html", page.encode()) == "Grüße aus Köln"


def test_html_with_bom_and_missing_head_tags() -> None:
    page = "<title>T</title><p>Body text</p>"
    assert _text("a.xhtml", page.encode("utf-16")) == "T\n\nBody text"
    assert _text("a.html", b"\xef\xbb\xbf" + page.encode()) == "T\n\nBody text"


def test_xhtml_self_closing_tags() -> None:
    page = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>X</title><script src="a.js"/></head>
<body><p>One<br/>Two</p><p>Three</p></body></html>"""
    assert _text("a.xhtml", page.encode()) == "X\n\nOne\nTwo\n\nThree"


def test_html_seven_bit_charset_is_not_taken_for_utf8() -> None:
    page = '<meta charset="iso-2022-jp"><p>日本語のテキストです。</p>'
    assert _text("jp.html", page.encode("iso-2022-jp")) == "日本語のテキストです。"


@pytest.mark.parametrize("charset", ["rot13", "base64", "no-such-charset", "utf-16", "undefined"])
def test_html_declaring_a_non_charset_falls_back_to_detection(charset: str) -> None:
    page = f'<meta charset="{charset}"><p>Grüße aus Köln, schöne Straße</p>'
    assert _text("a.html", page.encode("latin-1")) == "Grüße aus Köln, schöne Straße"


def test_html_unfinished_markup_at_the_end_is_dropped_quickly() -> None:
    # Python's HTMLParser.close() rescans an unfinished tag from each '<' in it: quadratic time.
    start = time.monotonic()
    assert _text("a.html", b"<p>Intro</p>" + b"<a " * 100_000) == "Intro"
    assert _text("a.html", b"<p>Intro</p><!--" + b"<!--" * 100_000) == "Intro"
    assert time.monotonic() - start < 10


def test_html_unknown_marked_section_is_skipped() -> None:
    assert _text("a.html", b"<p>One</p><![foo[ x ]]><p>Two</p>") == "One\n\nTwo"
    assert _text("a.html", b"<![if !supportLists]>1.<![endif]> Item") == "1. Item"


def test_html_trailing_text_with_an_ampersand_is_kept() -> None:
    assert _text("a.html", b"<p>Lab</p>Research at R&D") == "Lab\n\nResearch at R&D"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html><head><script>x()</script></head><body> </body></html>", "no visible text"),
        (bytes(range(256)) * 8, "not text"),
        (b"", "empty"),
    ],
)
def test_unusable_html(data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        extract.extract(Path("a.html"), data)


# --- DOCX ---------------------------------------------------------------------------------

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
RELS = """<?xml version="1.0"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
 Target="word/document.xml"/></Relationships>"""
DOC_RELS = """<?xml version="1.0"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"
 Target="footnotes.xml"/></Relationships>"""
DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document {W}><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>
  <w:r><w:t>Quarterly report</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">Sales grew </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>strongly</w:t></w:r>
  <w:r><w:tab/><w:t>in spring.</w:t><w:br/><w:t>Second line.</w:t></w:r>
  <w:del><w:r><w:delText>removed words</w:delText></w:r></w:del>
  <w:r><w:instrText>PAGE \\* MERGEFORMAT</w:instrText></w:r></w:p>
<w:tbl><w:tblPr/><w:tr><w:tc><w:p><w:r><w:t>Region</w:t></w:r></w:p></w:tc>
  <w:tc><w:p><w:r><w:t>Revenue</w:t></w:r></w:p></w:tc></w:tr>
  <w:tr><w:tc><w:p><w:r><w:t>North</w:t></w:r></w:p><w:p><w:r><w:t>coast</w:t></w:r></w:p></w:tc>
  <w:tc><w:p><w:r><w:t>1200</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
<w:p/>
<w:p><w:r><w:t>Closing remarks.</w:t></w:r></w:p>
<w:sectPr/></w:body></w:document>"""
FOOTNOTES = f"""<?xml version="1.0"?><w:footnotes {W}>
<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>
<w:footnote w:id="1"><w:p><w:r><w:t>Figures are unaudited.</w:t></w:r></w:p></w:footnote></w:footnotes>"""


def _docx(document: str = DOCUMENT, **extra: str) -> bytes:
    members: dict[str, str | bytes] = {
        "[Content_Types].xml": "<Types/>",
        "_rels/.rels": RELS,
        "word/document.xml": document,
        "word/_rels/document.xml.rels": DOC_RELS,
        "word/footnotes.xml": FOOTNOTES,
    }
    members.update(extra)
    return _zip(members)


def test_docx_paragraphs_tables_and_footnotes() -> None:
    text = _text("report.docx", _docx())
    assert text == (
        "Quarterly report\n\n"
        "Sales grew strongly\tin spring.\nSecond line.\n\n"
        "Region\tRevenue\n\n"
        "North coast\t1200\n\n"
        "Closing remarks.\n\n"
        "Figures are unaudited."
    )


def test_docx_main_part_is_found_through_relationships() -> None:
    rels = RELS.replace("word/document.xml", "/word/main.xml")
    data = _zip({"_rels/.rels": rels, "word/main.xml": DOCUMENT})
    assert "Quarterly report" in _text("a.docx", data)


def test_docx_text_box_is_read_once() -> None:
    box = """<w:p><w:r><w:t>Anchor.</w:t></w:r><w:r><mc:AlternateContent
      xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">
      <mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p><w:r><w:t>Boxed</w:t></w:r></w:p>
      </w:txbxContent></w:drawing></mc:Choice>
      <mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Boxed</w:t></w:r></w:p></w:txbxContent>
      </w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"""
    document = f"<w:document {W}><w:body>{box}</w:body></w:document>"
    assert _text("a.docx", _docx(document)) == "Anchor.\n\nBoxed\n\nFigures are unaudited."


# --- ODT ----------------------------------------------------------------------------------

ODT_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0">
<office:body><office:text>
<text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>
<text:h text:outline-level="1">Travel   plan</text:h>
<text:p>Day<text:s text:c="3"/>one:<text:tab/>Lisbon <text:span text:style-name="T1">old town</text:span>,
   then<text:line-break/>the coast.<text:note text:note-class="footnote">
   <text:note-citation>1</text:note-citation>
   <text:note-body><text:p>Book early.</text:p></text:note-body></text:note></text:p>
<office:annotation><text:p>a reviewer's comment</text:p></office:annotation>
<text:list><text:list-item><text:p>Passport</text:p></text:list-item>
 <text:list-item><text:p>Tickets</text:p></text:list-item></text:list>
<table:table><table:table-row><table:table-cell><text:p>Day</text:p></table:table-cell>
 <table:table-cell><text:p>City</text:p></table:table-cell></table:table-row>
 <table:table-row><table:table-cell><text:p>2</text:p></table:table-cell>
 <table:table-cell><text:p>Porto</text:p></table:table-cell></table:table-row></table:table>
</office:text></office:body></office:document-content>"""


def _odt(content: str = ODT_CONTENT, **extra: str) -> bytes:
    members: dict[str, str | bytes] = {
        "mimetype": "application/vnd.oasis.opendocument.text",
        "content.xml": content,
        "META-INF/manifest.xml": "<manifest/>",
    }
    members.update(extra)
    return _zip(members, stored_first="mimetype")


def test_odt_paragraphs_spaces_lists_tables_and_notes() -> None:
    text = _text("plan.odt", _odt())
    assert text == (
        "Travel plan\n\n"
        "Day   one:\tLisbon old town, then\nthe coast.\n\n"
        "Passport\n\nTickets\n\n"
        "Day\tCity\n\n2\tPorto\n\n"
        "Book early."
    )


def test_encrypted_odt_is_refused() -> None:
    manifest = '<manifest:manifest><manifest:encryption-data manifest:checksum="x"/></manifest:manifest>'
    with pytest.raises(ExtractionError, match="encrypted ODT: needs a password"):
        extract.extract(Path("a.odt"), _odt(**{"META-INF/manifest.xml": manifest}))


# --- EPUB ---------------------------------------------------------------------------------

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
OPF = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
  <dc:title>The Lighthouse</dc:title><dc:creator>A. Keeper</dc:creator></metadata>
<manifest>
  <item id="c2" href="text/chapter%202.xhtml" media-type="application/xhtml+xml"/>
  <item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>
  <item id="notes" href="text/unused.xhtml" media-type="application/xhtml+xml"/>
  <item id="css" href="style.css" media-type="text/css"/>
  <item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>
</manifest>
<spine><itemref idref="cover"/><itemref idref="c1"/><itemref idref="c2"/></spine>
</package>"""


def _chapter(title: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        f"<head><title>{title}</title></head><body>{body}</body></html>"
    )


def _epub(**extra: str | bytes) -> bytes:
    members: dict[str, str | bytes] = {
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": CONTAINER,
        "OEBPS/content.opf": OPF,
        "OEBPS/cover.xhtml": _chapter("Cover", '<img src="cover.jpg" alt="cover"/>'),
        "OEBPS/text/ch1.xhtml": _chapter("The Lighthouse", "<h1>Chapter One</h1><p>The lamp was lit.</p>"),
        "OEBPS/text/chapter 2.xhtml": _chapter("The Lighthouse", "<h1>Chapter Two</h1><p>A storm came.</p>"),
        "OEBPS/text/unused.xhtml": _chapter("x", "<p>Not in the spine.</p>"),
        "OEBPS/style.css": "p { margin: 0 }",
    }
    members.update(extra)
    return _zip(members, stored_first="mimetype")


def test_epub_chapters_in_spine_order_one_page_each() -> None:
    document = extract.extract(Path("book.epub"), _epub())
    assert [p.text for p in document.pages] == [
        "The Lighthouse\nA. Keeper\n\nChapter One\n\nThe lamp was lit.",
        "Chapter Two\n\nA storm came.",
    ]
    assert all(p.number is None for p in document.pages)


def test_epub_with_drm_is_refused() -> None:
    encryption = """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
      xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
      <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
      <enc:CipherData><enc:CipherReference URI="OEBPS/text/ch1.xhtml"/></enc:CipherData>
      </enc:EncryptedData></encryption>"""
    data = _epub(**{"META-INF/encryption.xml": encryption, "OEBPS/text/ch1.xhtml": random.randbytes(3000)})
    with pytest.raises(ExtractionError, match=r"^encrypted EPUB: protected by DRM$"):
        extract.extract(Path("book.epub"), data)


def test_epub_with_obfuscated_fonts_only_is_read() -> None:
    encryption = """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
      xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
      <enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>
      <enc:CipherData><enc:CipherReference URI="OEBPS/fonts/serif.otf"/></enc:CipherData>
      </enc:EncryptedData></encryption>"""
    assert "A storm came." in _text("book.epub", _epub(**{"META-INF/encryption.xml": encryption}))


def test_epub_missing_chapter_is_a_warning() -> None:
    opf = OPF.replace('<itemref idref="c2"/>', '<itemref idref="c2"/><itemref idref="gone"/>').replace(
        "</manifest>",
        '<item id="gone" href="text/gone.xhtml" media-type="application/xhtml+xml"/></manifest>',
    )
    document = extract.extract(Path("book.epub"), _epub(**{"OEBPS/content.opf": opf}))
    assert len(document.pages) == 2
    assert document.warnings == ("chapter OEBPS/text/gone.xhtml is missing from the archive",)


# --- E-mail -------------------------------------------------------------------------------


def test_multipart_mail_prefers_plain_text_and_lists_attachments() -> None:
    message = EmailMessage()
    message["From"] = "Ana Lima <ana@example.org>"
    message["To"] = "Bo <bo@example.org>, Cy <cy@example.org>"
    message["Cc"] = "Dee <dee@example.org>"
    message["Date"] = "Tue, 04 Mar 2025 10:00:00 +0000"
    message["Subject"] = "Zoë's offsite — agenda"
    message.set_content("Hi all,\n\nThe offsite starts at nine.\n")
    message.add_alternative(
        "<html><body><p>Hi all,</p><p>HTML version only</p></body></html>", subtype="html"
    )
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="agenda.pdf")
    message.add_attachment(bytes(range(256)), maintype="image", subtype="png", filename="map.png")
    raw = message.as_bytes()
    assert b"Content-Transfer-Encoding: base64" in raw
    text = _text("offsite.eml", raw)
    assert text == (
        "From: Ana Lima <ana@example.org>\n"
        "To: Bo <bo@example.org>, Cy <cy@example.org>\n"
        "Cc: Dee <dee@example.org>\n"
        "Date: Tue, 04 Mar 2025 10:00:00 +0000\n"
        "Subject: Zoë's offsite — agenda\n"
        "Attachments: agenda.pdf, map.png\n\n"
        "Hi all,\n\nThe offsite starts at nine."
    )


def test_html_only_mail_goes_through_the_html_extractor() -> None:
    message = EmailMessage()
    message["From"] = "news@example.org"
    message["Subject"] = "Newsletter"
    message.set_content(
        "<html><head><style>p{}</style></head><body><h2>Spring</h2><p>New &amp; improved.</p></body></html>",
        subtype="html",
    )
    assert _text("n.eml", message.as_bytes()) == (
        "From: news@example.org\nSubject: Newsletter\n\nSpring\n\nNew & improved."
    )


def test_quoted_printable_latin1_mail() -> None:
    raw = (
        b"From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <jm@example.de>\r\n"
        b"To: team@example.de\r\n"
        b"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n"
        b"Date: Mon, 3 Mar 2025 08:00:00 +0100\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="iso-8859-1"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Sch=F6ne Gr=FC=DFe aus der Stra=DFe, das ist eine sehr lange Zeile, die um=\r\n"
        b"gebrochen wurde.\r\n"
    )
    assert _text("m.eml", raw) == (
        "From: Jürgen Müller <jm@example.de>\nTo: team@example.de\nDate: Mon, 03 Mar 2025 08:00:00 +0100\n"
        "Subject: Grüße aus Köln\n\n"
        "Schöne Grüße aus der Straße, das ist eine sehr lange Zeile, die umgebrochen wurde."
    )


def test_mail_with_a_wrong_charset_label_is_still_read() -> None:
    raw = (
        b"From: a@example.org\nSubject: x\nContent-Type: text/plain; charset=us-ascii\n"
        b"Content-Transfer-Encoding: 8bit\n\n" + "Café crème".encode()
    )
    assert _text("m.eml", raw).endswith("Café crème")


@pytest.mark.parametrize("charset", ["rot13", "x-unknown", "utf-8"])
def test_mail_with_an_unusable_charset_label_is_still_read(charset: str) -> None:
    raw = f"From: a@example.org\nSubject: x\nContent-Type: text/plain; charset={charset}\n\n".encode()
    assert _text("m.eml", raw + "Grüße aus Köln, schöne Straße".encode("latin-1")).endswith(
        "Grüße aus Köln, schöne Straße"
    )


def test_mail_that_trips_the_modern_header_parser_is_read_by_the_legacy_one() -> None:
    raw = (
        b"From: a@example.org\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=utf-8\n\nThe body.\n"
        b"--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename*=\x00''x.pdf\n\nJVBERi0=\n--b--\n"
    )
    assert _text("m.eml", raw) == (
        "From: a@example.org\nSubject: Grüße\nAttachments: unnamed application/pdf\n\nThe body."
    )


def test_forwarded_message_is_read_inline() -> None:
    inner = EmailMessage()
    inner["From"] = "orig@example.org"
    inner["Subject"] = "Original"
    inner.set_content("The original words.")
    outer = EmailMessage()
    outer["From"] = "fwd@example.org"
    outer["Subject"] = "Fwd: Original"
    outer.set_content("See below.")
    outer.add_attachment(inner, disposition="inline")
    text = _text("f.eml", outer.as_bytes())
    _in_order(text, "Subject: Fwd: Original", "See below.", "From: orig@example.org", "The original words.")


# --- Broken input -------------------------------------------------------------------------

RANDOM = random.Random(7).randbytes(4000)


def _broken_inputs() -> list[tuple[str, bytes, str]]:
    docx, odt, epub = _docx(), _odt(), _epub()
    no_body = f"<w:document {W}><w:body><w:p><w:r><w:t>unclosed</w:r></w:p></w:body></w:document>"
    return [
        ("a.docx", RANDOM, "broken DOCX: the file is not a valid zip archive"),
        ("a.docx", docx[: len(docx) // 2], "broken DOCX: the zip archive is damaged or incomplete"),
        ("a.docx", _zip({"_rels/.rels": RELS}), "broken DOCX: word/document.xml is missing"),
        ("a.docx", _docx(no_body), r"broken DOCX: word/document.xml is not valid XML \(line 1, column"),
        (
            "a.docx",
            _zip({"_rels/.rels": RELS, "word/document.xml": f"<w:document {W}><w:body/></w:document>"}),
            "no text: the document holds no text",
        ),
        ("a.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old Word 97-2003"),
        (
            "a.docx",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptedPackage".encode("utf-16-le"),
            "encrypted DOCX: needs a password",
        ),
        ("a.odt", RANDOM, "broken ODT: the file is not a valid zip archive"),
        ("a.odt", odt[:-30], "broken ODT: the zip archive is damaged or incomplete"),
        ("a.odt", _zip({"mimetype": "x"}), "broken ODT: content.xml is missing"),
        ("a.odt", _odt("<office:document-content>"), "broken ODT: content.xml is not valid XML"),
        ("a.odt", _odt("<a/>"), "broken ODT: content.xml has no document body"),
        ("a.epub", RANDOM, "broken EPUB: the file is not a valid zip archive"),
        ("a.epub", epub[: len(epub) - 100], "broken EPUB: the zip archive is damaged or incomplete"),
        (
            "a.epub",
            _zip({"mimetype": "application/epub+zip"}),
            "broken EPUB: META-INF/container.xml is missing",
        ),
        ("a.epub", _epub(**{"META-INF/container.xml": "<container>"}), "container.xml is not valid XML"),
        ("a.epub", _epub(**{"META-INF/container.xml": "<c/>"}), "does not name the book's package"),
        ("a.epub", _epub(**{"OEBPS/content.opf": "<package"}), "OEBPS/content.opf is not valid XML"),
        ("a.epub", _epub(**{"OEBPS/content.opf": "<package/>"}), "lists no chapters"),
        ("a.eml", RANDOM, "broken email: the file has no mail headers"),
        ("a.eml", b"just a note\nwith two lines\n", "broken email: the file has no mail headers"),
        ("a.html", RANDOM, "not text"),
        ("a.html", b"", "no text: the file is empty"),
    ]


@pytest.mark.parametrize(("name", "data", "reason"), _broken_inputs())
def test_broken_input_gets_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        extract.extract(Path(name), data)


def test_zip_bomb_member_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "MAX_MEMBER_BYTES", 1000)
    document = f"<w:document {W}><w:body><w:p><w:r><w:t>{'a' * 5000}</w:t></w:r></w:p></w:body></w:document>"
    with pytest.raises(ExtractionError, match=r"DOCX refused: word/document\.xml is too large when unpacked"):
        extract.extract(Path("a.docx"), _docx(document))


def test_member_whose_size_is_understated_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "MAX_MEMBER_BYTES", 1000)
    data = bytearray(_docx(f"<w:document {W}><w:body>{'<w:p/>' * 2000}</w:body></w:document>"))
    # Rewrite the sizes the archive claims for word/document.xml, in the local header and the directory.
    name = b"word/document.xml"
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                data[start + size_offset : start + size_offset + 4] = (10).to_bytes(4, "little")
            start += 4
    # Python's zipfile stops at the claimed size, so the lie shows as a checksum error.
    with pytest.raises(
        ExtractionError, match=r"broken DOCX: word/document\.xml is damaged inside the archive"
    ):
        extract.extract(Path("a.docx"), bytes(data))


# Entity declarations: no document part needs one, and expat's own limit (an expansion at
# most a hundred times the input, past 8 MB) would still let a 64 MB part become gigabytes.
_LAUGHS = (
    '<!DOCTYPE d [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    + "]>"
)
# Within expat's hundredfold limit: 60 bytes of text per 4-byte reference.
_WIDE_ENTITY = '<!DOCTYPE d [<!ENTITY w "' + "x" * 60 + '">]>'
_LOCAL_FILE = '<!DOCTYPE d [<!ENTITY f SYSTEM "file:///etc/passwd">]>'


def _entity_docx(doctype: str, reference: str) -> bytes:
    body = f"<w:body><w:p><w:r><w:t>{reference}</w:t></w:r></w:p></w:body>"
    return _docx(f'<?xml version="1.0"?>{doctype}<w:document {W}>{body}</w:document>')


@pytest.mark.parametrize(
    ("doctype", "reference"),
    [(_LAUGHS, "&l9;"), (_WIDE_ENTITY, "&w;" * 200_000), (_LOCAL_FILE, "&f;")],
    ids=["billion-laughs", "expansion-under-expat-limit", "external-entity"],
)
def test_xml_entity_declarations_are_refused_with_a_reason(doctype: str, reference: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ExtractionError, match=r"DOCX refused: word/document\.xml declares XML entities"):
        extract.extract(Path("a.docx"), _entity_docx(doctype, reference))
    assert time.perf_counter() - started < 5


def test_xml_entities_are_refused_in_every_archive_kind() -> None:
    content = f'<?xml version="1.0"?>{_LAUGHS}<office:document-content xmlns:office="x">&l9;</office:document-content>'  # noqa: E501
    with pytest.raises(ExtractionError, match=r"ODT refused: content\.xml declares XML entities"):
        extract.extract(Path("a.odt"), _odt(content))
    opf = OPF.replace("<package", f"{_LAUGHS}<package", 1).replace("The Lighthouse", "&l9;")
    with pytest.raises(ExtractionError, match=r"EPUB refused: OEBPS/content\.opf declares XML entities"):
        extract.extract(Path("a.epub"), _epub(**{"OEBPS/content.opf": opf}))


def test_a_document_type_without_entities_is_still_read() -> None:
    doctype = '<!DOCTYPE w:document SYSTEM "http://example.invalid/word.dtd">'
    text = _text("a.docx", _entity_docx(doctype, "Plain words &amp; more"))
    assert text == "Plain words & more\n\nFigures are unaudited."  # the fixture's footnote follows


def test_a_utf16_part_with_entities_is_refused_too() -> None:
    body = "<w:body><w:p><w:r><w:t>&l9;</w:t></w:r></w:p></w:body>"
    document = f'<?xml version="1.0" encoding="UTF-16"?>{_LAUGHS}<w:document {W}>{body}</w:document>'
    with pytest.raises(ExtractionError, match="declares XML entities"):
        extract.extract(Path("a.docx"), _docx(**{"word/document.xml": document.encode("utf-16")}))  # type: ignore[arg-type]


def _mutated(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        if rng.random() < 0.5:
            out[at] = rng.choice(b"<>&;=\"'/!-:?#%\x00\xff")
        else:
            del out[at : at + rng.randint(1, 12)]
    return bytes(out)


def test_fuzzed_xml_inside_archives_fails_only_with_extraction_errors() -> None:
    rng = random.Random(3)
    for _ in range(100):
        mutated = {
            "a.docx": _docx(_mutated(DOCUMENT.encode(), rng).decode("latin-1")),
            "b.docx": _docx(**{"_rels/.rels": _mutated(RELS.encode(), rng).decode("latin-1")}),
            "a.odt": _odt(_mutated(ODT_CONTENT.encode(), rng).decode("latin-1")),
            "a.epub": _epub(**{"OEBPS/content.opf": _mutated(OPF.encode(), rng)}),
            "b.epub": _epub(**{"META-INF/container.xml": _mutated(CONTAINER.encode(), rng)}),
        }
        for name, data in mutated.items():
            with contextlib.suppress(ExtractionError):
                extract.extract(Path(name), data)


def test_fuzzed_archives_fail_only_with_extraction_errors() -> None:
    rng = random.Random(1)
    originals = {"a.docx": _docx(), "a.odt": _odt(), "a.epub": _epub()}
    for name, original in originals.items():
        for _ in range(150):
            data = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = rng.choice([len(data), rng.randrange(1, len(data))])
            with contextlib.suppress(ExtractionError):
                extract.extract(Path(name), bytes(data[:cut]))


def test_fuzzed_html_and_mail_fail_only_with_extraction_errors() -> None:
    rng = random.Random(2)
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "s"
    message.set_content("body text")
    message.add_alternative("<p>html</p>", subtype="html")
    message.add_attachment(b"data", maintype="application", subtype="pdf", filename="x.pdf")
    originals = {"a.html": PAGE.encode(), "a.eml": message.as_bytes()}
    for name, original in originals.items():
        for _ in range(200):
            data = bytearray(original)
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.choice(
                    b"<>&;=\"'/!-\n:?\x00\xff" + bytes([rng.randrange(256)])
                )
            with contextlib.suppress(ExtractionError):
                extract.extract(Path(name), bytes(data))


# --- Headings -----------------------------------------------------------------------------


def _headings(name: str, data: bytes) -> list[list[tuple[int, str]]]:
    """Each page's headings as (level, text), after checking every offset points at its text."""
    pages = extract.extract(Path(name), data).pages
    for page in pages:
        offsets = [offset for offset, _, _ in page.headings]
        assert offsets == sorted(offsets)
        for offset, _, words in page.headings:
            assert " ".join(page.text[offset:].split())[: len(words)] == words, (page.text, offset, words)
    return [[(level, words) for _, level, words in page.headings] for page in pages]


def test_html_headings_have_levels_and_offsets_in_the_visible_text() -> None:
    page = """<html><head><title>Garden notes</title></head><body>
      <h1>  Tomatoes <small>and   more</small></h1><p>Water them.</p>
      <section><h2>Pruning<br>in spring</h2><p>Cut back.</p></section>
      <h3>   </h3><p>An empty heading is no heading.</p>
      <h4>Unclosed <h5>Next</h5><p>Heading inside a heading.</p>
      <script><h6>hidden</h6></script><h6>Last</h6><p>End.</p>
    </body></html>"""
    assert _headings("page.html", page.encode()) == [
        [(1, "Tomatoes and more"), (2, "Pruning in spring"), (4, "Unclosed"), (5, "Next"), (6, "Last")]
    ]
    # The <title> is put before the body; the offsets follow it.
    document = extract.extract(Path("page.html"), page.encode())
    assert document.pages[0].text.startswith("Garden notes\n\nTomatoes and more")
    assert document.pages[0].headings[0][0] == len("Garden notes\n\n")


def test_html_without_headings_has_none() -> None:
    assert _headings("page.html", PAGE.replace("<h1>Tomatoes</h1>", "").encode()) == [[]]


STYLES = f"""<?xml version="1.0" encoding="UTF-8"?><w:styles {W}>
<w:style w:type="paragraph" w:styleId="Standard"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/>
  <w:basedOn w:val="Standard"/></w:style>
<w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="My section"/>
  <w:basedOn w:val="berschrift2"/></w:style>
<w:style w:type="paragraph" w:styleId="Outlined"><w:name w:val="Chapter"/>
  <w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="Not a heading at all"/></w:style>
</w:styles>"""


def _styled(style: str, words: str) -> str:
    return f'<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:t>{words}</w:t></w:r></w:p>'


def test_docx_headings_come_from_paragraph_styles_by_their_names() -> None:
    body = "".join(
        [
            _styled("Titel", "Annual report"),
            _styled("Standard", "Opening words."),
            _styled("berschrift2", "Sales  by region"),
            "<w:p><w:r><w:t>Plain paragraph.</w:t></w:r></w:p>",
            _styled("Custom", "Based on a heading"),
            _styled("Outlined", "By outline level"),
            _styled("Heading1", "Named otherwise, so body text"),
            _styled("berschrift2", " "),  # an empty heading paragraph is no heading
            "<w:tbl><w:tr><w:tc>{}</w:tc></w:tr></w:tbl>".format(_styled("Titel", "In a table")),
        ]
    )
    document = f"<w:document {W}><w:body>{body}</w:body></w:document>"
    rels = DOC_RELS.replace(
        "</Relationships>",
        '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'styles" Target="styles.xml"/></Relationships>',
    )
    data = _docx(document, **{"word/styles.xml": STYLES, "word/_rels/document.xml.rels": rels})
    assert _headings("a.docx", data) == [
        [(1, "Annual report"), (2, "Sales by region"), (2, "Based on a heading"), (3, "By outline level")]
    ]


def test_docx_without_styles_part_reads_heading_style_ids() -> None:
    # The test document of the format tests: a Heading1 paragraph and no styles.xml.
    assert _headings("report.docx", _docx()) == [[(1, "Quarterly report")]]
    document = DOCUMENT.replace('w:val="Heading1"', 'w:val="Heading3"').replace(
        "<w:p><w:r><w:t>Closing remarks.</w:t>",
        '<w:p><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>Closing remarks.</w:t>',
    )
    assert _headings("report.docx", _docx(document)) == [[(3, "Quarterly report"), (1, "Closing remarks.")]]


def test_odt_headings_keep_their_outline_level() -> None:
    content = ODT_CONTENT.replace(
        "<text:list>",
        '<text:h text:outline-level="2">Packing <text:span>list</text:span></text:h>'
        "<text:h>No level given</text:h><text:list>",
    ).replace(
        "<table:table-cell><text:p>Day</text:p>",
        '<table:table-cell><text:h text:outline-level="3">Cell heading</text:h>',
    )
    assert _headings("plan.odt", _odt(content)) == [
        [(1, "Travel plan"), (2, "Packing list"), (1, "No level given")]
    ]


def test_epub_chapter_headings_follow_the_book_title_on_the_first_page() -> None:
    assert _headings("book.epub", _epub()) == [[(1, "Chapter One")], [(1, "Chapter Two")]]
    first = extract.extract(Path("book.epub"), _epub()).pages[0]
    assert first.text[first.headings[0][0] :].startswith("Chapter One")
