"""PDF: the text of each page (pypdf), pages joined by blank lines.

``pages`` records where each page's text starts (1-based page numbers) so
that chunks can cite pages. A PDF encrypted with an empty user password (common
for "no copying" PDFs) is read; one that needs a password is refused, as are
corrupt files. There is no OCR: a scanned PDF has no text and is reported as
empty.
"""

from __future__ import annotations

import io

from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from shared.documents import LoadedDocument
from shared.errors import DocumentError, EmptyDocument

# pypdf signals many kinds of damage with plain Python errors.
_PYPDF_FAILURES = (PyPdfError, ValueError, TypeError, KeyError, AttributeError, OSError)


def load_pdf(content: bytes) -> LoadedDocument:
    try:
        reader = PdfReader(io.BytesIO(content))
        _unlock(reader)
        page_texts = [_page_text(page) for page in reader.pages]
        title = _metadata_title(reader)
    except DocumentError:
        raise
    except _PYPDF_FAILURES as exc:
        raise DocumentError(f"the PDF could not be read (corrupt or unsupported): {exc}") from exc
    if not any(page_texts):
        raise EmptyDocument(
            "the PDF has no extractable text (a scanned image? OCR is not supported)"
        )
    return _assemble(page_texts, title)


def _unlock(reader: PdfReader) -> None:
    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("")
    except (FileNotDecryptedError, DependencyError) as exc:
        raise DocumentError(f"the PDF is encrypted and cannot be read: {exc}") from exc
    if not unlocked:
        raise DocumentError("the PDF is password-protected; send an unencrypted copy")


def _page_text(page: PageObject) -> str:
    """One damaged page should not cost the rest of the document its text."""
    try:
        return _normalise(page.extract_text())
    except _PYPDF_FAILURES:
        return ""


def _metadata_title(reader: PdfReader) -> str | None:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return " ".join(str(title).split()) or None if title else None


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _assemble(page_texts: list[str], title: str | None) -> LoadedDocument:
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    offset = 0
    for number, text in enumerate(page_texts, start=1):
        pages.append((offset, number))
        if text:
            parts.append(text)
            offset += len(text) + 2
    return LoadedDocument(text="\n\n".join(parts), title=title, pages=pages)
