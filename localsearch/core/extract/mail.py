"""E-mail messages (.eml): the headers a reader looks at, the body, and the names of the
attachments (which are not extracted). Named mail.py so it cannot shadow the email package."""

from __future__ import annotations

import email
import logging
import re
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

from localsearch.core.extract.document import Document, Page
from localsearch.core.extract.html import decode_declared, decode_markup, markup_to_text
from localsearch.errors import ExtractionError

log = logging.getLogger(__name__)

_SHOWN_HEADERS = ("From", "To", "Cc", "Date", "Subject")
# Any of these shows the file is a mail message and not some other text named .eml.
_MAIL_HEADERS = {
    "from", "to", "cc", "bcc", "date", "subject", "message-id", "received", "mime-version",
    "return-path", "delivered-to", "reply-to", "sender", "in-reply-to", "references", "x-mailer",
}  # fmt: skip
_SPACES = re.compile(r"\s+")


def _decode_words(raw: str) -> str:
    """RFC 2047 encoded words ("=?utf-8?q?...?=") to text."""
    try:
        return str(make_header(decode_header(raw)))
    except Exception:  # malformed encoded words: show them as they stand
        return raw


def _header(message: Message, name: str) -> str:
    if message.policy is policy.compat32:
        values = [_decode_words(str(v)) for v in message.get_all(name, [])]
    else:
        try:
            values = [str(v) for v in message.get_all(name, [])]
        except Exception:  # the modern header parser fails in assorted ways on malformed headers
            values = [_decode_words(str(v)) for k, v in message.raw_items() if k.lower() == name.lower()]
    return _SPACES.sub(" ", ", ".join(v for v in values if v.strip())).strip()


def _header_lines(message: Message, attachments: list[str]) -> list[str]:
    lines = [f"{name}: {value}" for name in _SHOWN_HEADERS if (value := _header(message, name))]
    if attachments:
        lines.append("Attachments: " + ", ".join(attachments))
    return lines


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # a malformed RFC 2231 parameter
        return None
    if not name:
        return None
    # Some mail programs encode file names as RFC 2047 words, where RFC 2231 was meant.
    return _SPACES.sub(" ", _decode_words(name)).strip() or None


def _is_attachment(part: Message) -> bool:
    disposition = part.get_content_disposition()
    if disposition == "attachment":
        return True
    if part.get_content_maintype() in ("text", "multipart", "message"):
        return False
    # Pictures an HTML body shows inline are referred to by Content-ID; they are not attachments.
    return _filename(part) is not None and part.get("Content-ID") is None


def _decoded(part: Message) -> str:
    """A text part's content: transfer encoding undone, then its charset (the page's own
    declaration for HTML when the header names none)."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset()
    if charset is None and part.get_content_subtype() == "html":
        return decode_markup(data)
    return decode_declared(data, charset)


class _Reader:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.attachments: list[str] = []
        self.warnings: list[str] = []

    def walk(self, part: Message) -> None:
        if _is_attachment(part):
            self.attachments.append(_filename(part) or f"unnamed {part.get_content_type()}")
            return
        maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
        if part.get_content_type() == "message/rfc822":
            # A forwarded message shown inline: its own headers, then its body.
            for inner in part.get_payload():
                if isinstance(inner, Message):
                    nested = _Reader()
                    nested.walk(inner)
                    self.texts.append("\n".join(_header_lines(inner, nested.attachments)))
                    self.texts.extend(nested.texts)
                    self.warnings.extend(nested.warnings)
            return
        if maintype == "multipart":
            payload = part.get_payload()
            parts = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
            if subtype == "alternative":
                self.alternative(parts)
            else:
                for child in parts:
                    self.walk(child)
            return
        if maintype == "text" and subtype in ("plain", "html"):
            content = self.text_of(part)
            if content:
                self.texts.append(content)
        elif maintype == "text" and (name := _filename(part)):
            self.attachments.append(name)  # a calendar invitation or contact card

    def alternative(self, parts: list[Message]) -> None:
        """One version of the same body: the plain text if it says anything, else the richest."""
        for part in parts:
            if part.get_content_type() == "text/plain" and not _is_attachment(part):
                content = self.text_of(part)
                if content:
                    self.texts.append(content)
                    return
        if parts:
            # Senders order alternatives from plainest to richest, HTML (or related HTML) last.
            self.walk(parts[-1])

    def text_of(self, part: Message) -> str:
        try:
            decoded = _decoded(part)
        except ExtractionError as exc:
            self.warnings.append(f"a {part.get_content_type()} part could not be read: {exc}")
            return ""
        if part.get_content_subtype() == "html":
            return markup_to_text(decoded, title=False)
        return decoded.replace("\r\n", "\n").replace("\r", "\n").strip()


def _extract(data: bytes, parsing: policy.Policy) -> Document:
    message = email.message_from_bytes(data, policy=parsing)
    if not any(name.lower() in _MAIL_HEADERS for name in message):
        raise ExtractionError("broken email: the file has no mail headers (From, To, Subject…)")
    reader = _Reader()
    reader.walk(message)
    lines = _header_lines(message, reader.attachments)
    body = "\n\n".join(t for t in reader.texts if t)
    content = "\n".join(lines) + (f"\n\n{body}" if body else "")
    return Document([Page(content, None)], tuple(reader.warnings))


def extract_eml(path: Path, data: bytes) -> Document:
    try:
        try:
            return _extract(data, policy.default)
        except (ExtractionError, RecursionError):
            raise
        except Exception as exc:
            # The modern parser decodes headers best but fails in assorted ways (IndexError,
            # ValueError...) on malformed ones; the legacy parser reads them as they stand.
            log.info("%s: reading again with the legacy email parser (%s)", path, type(exc).__name__)
            log.debug("%s: the modern parser said %r", path, exc)
            return _extract(data, policy.compat32)
    except RecursionError as exc:
        raise ExtractionError("broken email: its parts nest too deeply to read") from exc
