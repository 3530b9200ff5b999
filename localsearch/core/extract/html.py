"""HTML and XHTML: the text a reader sees, with blocks kept apart so the chunker finds paragraphs.

EPUB chapters and HTML mail bodies go through markup_to_text as well. The standard library's
HTMLParser does it: bench/library_compare.py finds lxml and selectolax faster per page but
no more faithful, and they would add 8-11 MB of compiled code to the app.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

import localsearch.core.extract.text as text
from localsearch.core.extract.document import Document, Heading, Page
from localsearch.errors import ExtractionError

EXTENSIONS = [".html", ".htm", ".xhtml"]

# Content a browser never shows (or, for noscript, shows only with scripting off).
_HIDDEN = {"script", "style", "noscript", "template", "svg"}
# What may stand in <head>; any other tag means the author left out </head> and <body>.
_HEAD_CONTENT = {"title", "meta", "link", "style", "script", "base", "noscript", "template"}
_PARAGRAPH = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "details", "dialog",
    "div", "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hgroup", "hr", "html", "legend", "main", "menu", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tr", "ul",
}  # fmt: skip
_LINE = {"dd", "dt", "li", "option", "thead", "tbody", "tfoot"}
_PREFORMATTED = {"pre", "textarea", "listing", "xmp"}
_LISTS = {"ol", "ul", "menu"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# An unclosed heading would gather the rest of the page; a title needs far less than this.
_HEADING_PARTS = 64
_HEADING_CHARS = 400
_SPACES = re.compile(r"[ \t\n\r\f\xa0]+")
# Put before a heading's first visible character while the text is assembled, so its final
# offset is known after the whitespace is tidied; a noncharacter, never in real text.
_MARK = "\uffff"
_BLANK_LINES = re.compile(r"\n{3,}")

# Pages declare charsets by names that browsers read as a larger superset (WHATWG Encoding
# Standard); decoding by the narrow name would turn the extra characters into errors.
_BROWSER_ENCODINGS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gbk",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}
_DECLARED = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:+-]+)"""
    rb"""|<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:+-]+)""",
    re.IGNORECASE,
)
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32 BOMs start like these


def _declared_charset(data: bytes) -> str | None:
    """The charset a page declares in its first bytes, in a <meta> or an XML declaration."""
    match = _DECLARED.search(data[:4096])
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("ascii")


def decode_declared(data: bytes, charset: str | None) -> str:
    """Bytes whose charset is declared (by a page, or a mail header) to text. Declarations are
    often wrong, so a BOM outranks them and detection takes over when the bytes do not fit."""
    if charset is None or data.startswith(_BOMS):
        return text.decode(data)
    try:
        codec = codecs.lookup(charset).name
        b"a".decode(codec)  # Python also has codecs like "rot13" and "base64" that are not charsets
    except (LookupError, ValueError):
        return text.decode(data)
    if codec.startswith(("utf-16", "utf-32")):
        try:
            return data.decode(codec)
        except ValueError:
            return text.decode(data)
    if b"\x00" in data[:8192]:
        return text.decode(data)  # refuses binary data with the usual reason
    if not data.isascii():
        try:
            # Text re-saved as UTF-8 often keeps its old declaration (an editor leaves the
            # <meta charset>, a mail program the header). Legacy-encoded text is almost never
            # valid UTF-8, so valid UTF-8 is believed over the declaration.
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode(_BROWSER_ENCODINGS.get(codec, codec))
    except ValueError:
        return text.decode(data)


def decode_markup(data: bytes) -> str:
    """Bytes of an HTML page to text: BOM, then the declared charset, then detection."""
    charset = _declared_charset(data)
    try:
        # A UTF-16 declaration readable as ASCII cannot be true; browsers ignore it too.
        if charset is not None and codecs.lookup(charset).name.startswith(("utf-16", "utf-32")):
            charset = None
    except LookupError:
        charset = None
    return decode_declared(data, charset)


class _Output:
    """Collects text, turning block boundaries into at most one blank line."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pending = 0  # newlines owed before the next text
        self.last = "\n"
        self.mark_next: int | None = None  # a heading waiting for its first visible text
        self.marked: list[int] = []  # the headings marked in the text, in order

    def breaks(self, count: int) -> None:
        if self.parts:
            self.pending = max(self.pending, count)

    def line_break(self) -> None:
        # Old pages make paragraphs with <br><br>, so a second <br> in a row is a paragraph break.
        if self.parts:
            self.pending = min(self.pending + 1, 2)

    def add(self, value: str, *, preformatted: bool = False) -> None:
        if _MARK in value:
            value = value.replace(_MARK, "\ufffd")
        if not preformatted:
            value = _SPACES.sub(" ", value)
            if value.strip() == "":
                # Whitespace between tags separates words, but never starts a line.
                if value and not self.pending and self.last not in " \t\n":
                    self.parts.append(" ")
                    self.last = " "
                return
        if self.pending:
            self.parts.append("\n" * self.pending)
            self.last = "\n"
            self.pending = 0
        if not preformatted and self.last in " \t\n":
            value = value.lstrip(" ")
        if value:
            self.last = value[-1]
            if self.mark_next is not None and value.strip():
                visible = len(value) - len(value.lstrip())
                value = f"{value[:visible]}{_MARK}{value[visible:]}"
                self.marked.append(self.mark_next)
                self.mark_next = None
            self.parts.append(value)

    def result(self) -> tuple[str, list[int]]:
        """The text, and the offset in it of each marked heading."""
        joined = "".join(self.parts).replace("\r\n", "\n").replace("\r", "\n")
        lines = "\n".join(line.rstrip() for line in joined.split("\n"))
        tidied = _BLANK_LINES.sub("\n\n", lines).strip()
        if not self.marked:
            return tidied, []
        offsets = [m.start() - n for n, m in enumerate(re.finditer(_MARK, tidied))]
        return tidied.replace(_MARK, ""), offsets


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _Output()
        self.title: list[str] = []
        self.in_head = False
        self.in_title = False
        self.hidden: list[str] = []
        self.preformatted = 0
        self.lists: list[list[int]] = []  # [ordered, next number] per open list
        self.cells: list[int] = []  # cells seen in the current row, per open table
        self.headings: list[tuple[int, list[str]]] = []  # level and text parts of h1-h6
        self.heading: list[str] | None = None  # the text parts of the open heading

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden.append(tag)
            return
        if self.hidden:
            return
        if tag == "head":
            self.in_head = True
            return
        if tag == "title":
            self.in_title = True
            return
        if self.in_head and tag not in _HEAD_CONTENT:
            self.in_head = False
        if tag in _PREFORMATTED:
            self.preformatted += 1
        if tag in _LISTS:
            self.lists.append([tag == "ol", _list_start(attrs)])
        if tag == "table":
            self.cells.append(0)
        elif tag == "tr" and self.cells:
            self.cells[-1] = 0
        elif tag in ("td", "th"):
            if self.cells and self.cells[-1]:
                self.out.add("\t", preformatted=True)
            if self.cells:
                self.cells[-1] += 1
        if tag in _HEADINGS:  # a heading opened inside another ends that one, as in a browser
            self.heading = []
            self.headings.append((_HEADINGS[tag], self.heading))
            self.out.mark_next = len(self.headings) - 1
        if tag == "br":
            if self.heading is not None:
                self.heading.append(" ")
            self.out.line_break()
        elif tag in _PARAGRAPH:
            self.out.breaks(2)
        elif tag in _LINE:
            self.out.breaks(1)
        if tag == "li":
            ordered = bool(self.lists and self.lists[-1][0])
            if ordered:
                self.out.add(f"{self.lists[-1][1]}. ", preformatted=True)
                self.lists[-1][1] += 1
            else:
                self.out.add("• ", preformatted=True)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag in self.hidden:
                # Unclosed hidden elements inside this one end with it, as in a browser.
                del self.hidden[len(self.hidden) - 1 - self.hidden[::-1].index(tag) :]
            return
        if tag == "head":
            self.in_head = False
        elif tag == "title":
            self.in_title = False
        elif tag in _PREFORMATTED:
            self.preformatted = max(0, self.preformatted - 1)
        elif tag in _LISTS and self.lists:
            self.lists.pop()
        elif tag == "table" and self.cells:
            self.cells.pop()
        elif tag in _HEADINGS:  # any </hN> ends the open heading, as in a browser
            self.heading = None
            self.out.mark_next = None
        if tag in _PARAGRAPH:
            self.out.breaks(2)
        elif tag in _LINE:
            self.out.breaks(1)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            # The base class knows only SGML's and Word's keywords in <![...[; a browser skips
            # an unknown one as a comment, to the next '>'.
            end = self.rawdata.find(">", i)
            return -1 if end < 0 else end + 1

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.in_title:
            self.title.append(data)
            return
        if self.in_head:
            if not data.strip():
                return
            self.in_head = False  # text in <head> means the body began without its tags
        if self.heading is not None and len(self.heading) < _HEADING_PARTS:
            self.heading.append(data[:_HEADING_CHARS])
        self.out.add(data, preformatted=self.preformatted > 0)


def _list_start(attrs: list[tuple[str, str | None]]) -> int:
    for name, value in attrs:
        if name == "start" and value and value.strip().lstrip("-").isdigit():
            return int(value)
    return 1


def markup_to_text(markup: str, *, title: bool = True) -> str:
    """The visible text of an HTML document, the <title> first when `title` is set."""
    return markup_to_page(markup, title=title)[0]


def markup_to_page(markup: str, *, title: bool = True) -> tuple[str, tuple[Heading, ...]]:
    """The visible text of an HTML document (the <title> first when `title` is set) and
    its h1-h6 headings, by offset in that text."""
    parser = _TextParser()
    try:
        parser.feed(markup.removeprefix("\ufeff"))  # a BOM left by a decoder that kept it
        # What feed() leaves is text held back for an unfinished entity, or a tag, comment or
        # script that never ends. A browser shows none of the latter, and close() would rescan
        # it from each '<' in it: minutes for a few hundred kilobytes of them.
        if not parser.rawdata.startswith("<"):
            parser.close()
    except (AssertionError, ValueError) as exc:  # how HTMLParser reports markup it cannot cope with
        raise ExtractionError(f"broken HTML: the markup cannot be parsed ({exc})") from exc
    body, offsets = parser.out.result()
    headings: list[Heading] = []
    for number, offset in zip(parser.out.marked, offsets, strict=False):
        level, parts = parser.headings[number]
        words = _SPACES.sub(" ", "".join(parts).replace(_MARK, "\ufffd")).strip()
        if words:
            headings.append((offset, level, words))
    heading = _SPACES.sub(" ", "".join(parser.title)).strip() if title else ""
    if not heading or body.startswith(heading):
        return body, tuple(headings)
    if not body:
        return heading, ()
    shift = len(heading) + 2
    return f"{heading}\n\n{body}", tuple((o + shift, level, words) for o, level, words in headings)


def extract_html(path: Path, data: bytes) -> Document:
    content, headings = markup_to_page(decode_markup(data))
    if not content and data.strip():
        raise ExtractionError("no text: the page has no visible text, only markup")
    return Document([Page(content, None, headings)])
