"""Turn document bytes into a :class:`LoadedDocument` (text, title, pages, sections).

Supported types: ``text/plain``, ``text/markdown``, ``text/html`` and
``application/pdf``. The type comes from the message; when it is absent or
``application/octet-stream`` it is inferred from the file name's extension.

Text decoding (plain, Markdown, HTML): a byte-order mark wins, then a
``charset`` the content type (or an HTML ``<meta>``) declares, then UTF-8.
Bytes that are not valid UTF-8 go to a maintained detector
(charset-normalizer): Shift-JIS, GBK, KOI8-R… are read as what they are, and
Windows-1252 (legacy "ANSI") wins ties, as it is the usual encoding of old
Western text files. When the detector finds no encoding, or only a noisy one,
the document fails with that reason instead of being indexed as garbage.
Content with NUL bytes is refused as binary. Newlines are normalised to
``\\n``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from pathlib import PurePosixPath

from shared.documents import LoadedDocument
from shared.errors import DocumentError, EmptyDocument, UnsupportedContentType
from shared.loaders_html import load_html
from shared.loaders_markdown import load_markdown
from shared.loaders_pdf import load_pdf

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"
SUPPORTED_TYPES = (TEXT, MARKDOWN, HTML, PDF)

_EXTENSIONS = {
    ".txt": TEXT,
    ".text": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
}
_ALIASES = {
    "text/x-markdown": MARKDOWN,
    "application/xhtml+xml": HTML,
    "application/x-pdf": PDF,
}
_UNKNOWN = ("", "application/octet-stream", "binary/octet-stream")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def content_type_for(filename: str | None) -> str | None:
    """The supported content type a file name's extension implies, if any."""
    if not filename:
        return None
    # Accept URLs too: "https://host/a/report.pdf?download=1".
    path = filename.split("#", 1)[0].split("?", 1)[0]
    return _EXTENSIONS.get(PurePosixPath(path).suffix.lower())


def resolve_content_type(content_type: str | None, filename: str | None = None) -> str:
    """The supported type to load with; raises UnsupportedContentType."""
    media, _ = _split_content_type(content_type)
    if media in _UNKNOWN:
        inferred = content_type_for(filename)
        if inferred is None:
            raise UnsupportedContentType(
                f"cannot tell the type of {filename or 'the document'!r}: give content_type "
                f"(supported: {', '.join(SUPPORTED_TYPES)}) or a file name ending in "
                f"{', '.join(_EXTENSIONS)}"
            )
        return inferred
    media = _ALIASES.get(media, media)
    if media not in SUPPORTED_TYPES:
        raise UnsupportedContentType(
            f"unsupported content type {media!r}; supported: {', '.join(SUPPORTED_TYPES)}"
        )
    return media


def load(
    content: bytes, content_type: str | None, *, filename: str | None = None
) -> LoadedDocument:
    """Load a document. Raises UnsupportedContentType, DocumentError or EmptyDocument."""
    media = resolve_content_type(content_type, filename)
    _, charset = _split_content_type(content_type)
    loaded = _LOADERS[media](content, charset)
    if not loaded.text.strip():
        raise EmptyDocument(f"the {media} document has no text")
    return loaded


def _load_text(content: bytes, charset: str | None) -> LoadedDocument:
    return LoadedDocument(text=decode_text(content, charset))


def _load_markdown(content: bytes, charset: str | None) -> LoadedDocument:
    return load_markdown(decode_text(content, charset))


def _load_html(content: bytes, charset: str | None) -> LoadedDocument:
    if charset is None:
        declared = _META_CHARSET.search(content[:4096])
        charset = declared.group(1).decode("ascii") if declared else None
    return load_html(decode_text(content, charset))


def _load_pdf(content: bytes, charset: str | None) -> LoadedDocument:
    del charset  # PDFs carry their own encodings
    return load_pdf(content)


_LOADERS: dict[str, Callable[[bytes, str | None], LoadedDocument]] = {
    TEXT: _load_text,
    MARKDOWN: _load_markdown,
    HTML: _load_html,
    PDF: _load_pdf,
}


def decode_text(content: bytes, charset: str | None = None) -> str:
    """Bytes to text with ``\\n`` newlines (see the module docstring)."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if content.startswith(bom):
            return _normalise_newlines(_decode(content, encoding))
    if b"\x00" in content:
        raise DocumentError("the document looks binary (it contains NUL bytes), not text")
    if charset:
        return _normalise_newlines(_decode(content, charset))
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = detect_and_decode(content)
    return _normalise_newlines(text)


# More "mess" than this in the detector's best reading means it is guessing.
MAX_DETECTION_CHAOS = 0.2
# Without a byte-order mark these are guesses the detector makes for short
# Western text (four bytes of "café" read as two CJK characters): never take them.
_NO_BOM_EXCLUDED = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le"]
_LEGACY_DEFAULT = "cp1252"


def detect_and_decode(content: bytes) -> str:
    """Decode bytes that are not UTF-8 with the detected encoding; raise
    DocumentError when the detector can't tell with confidence."""
    from charset_normalizer import from_bytes  # only non-UTF-8 documents pay for it

    matches = list(from_bytes(content, cp_exclusion=_NO_BOM_EXCLUDED))
    if not matches:
        raise DocumentError(
            "the document is not UTF-8 and its character encoding can't be detected: "
            "save it as UTF-8 (or send its charset in the content type)"
        )
    best = matches[0]
    if best.chaos > MAX_DETECTION_CHAOS:
        raise DocumentError(
            f"the document is not UTF-8 and its encoding is unclear (best guess "
            f"{best.encoding}, {best.chaos:.0%} of it looks garbled): save it as UTF-8 "
            "(or send its charset in the content type)"
        )
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    legacy = next((m for m in tied if _LEGACY_DEFAULT in m.could_be_from_charset), None)
    if legacy is not None:
        return str(legacy)
    readings = {str(m) for m in tied}
    if len(readings) > 1:
        guesses = ", ".join(m.encoding for m in tied[:4])
        raise DocumentError(
            f"the document is not UTF-8 and too short or too mixed to tell its encoding "
            f"(equally likely: {guesses}): save it as UTF-8 (or send its charset in the "
            "content type)"
        )
    return str(best)


def _decode(content: bytes, encoding: str) -> str:
    try:
        return content.decode(encoding)
    except LookupError as exc:
        raise DocumentError(f"unknown character encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        raise DocumentError(f"the document is not valid {encoding}: {exc.reason}") from exc


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_content_type(content_type: str | None) -> tuple[str, str | None]:
    """``"text/plain; charset=latin-1"`` -> ``("text/plain", "latin-1")``."""
    if not content_type:
        return "", None
    media, *params = (part.strip() for part in content_type.split(";"))
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return media.lower(), charset
