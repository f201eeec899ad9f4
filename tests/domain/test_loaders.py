"""Loaders on small real files (tests/data/) and on crafted bytes."""

from __future__ import annotations

import io
from itertools import pairwise
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from shared.adapters.local_models.wordpiece import default_token_counter
from shared.chunking import chunk_document
from shared.errors import DocumentError, EmptyDocument, UnsupportedContentType
from shared.loaders import SUPPORTED_TYPES, content_type_for, decode_text, load
from shared.settings import ChunkingSettings

DATA = Path(__file__).resolve().parent.parent / "data"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---- plain text -------------------------------------------------------------------


def test_plain_text_file() -> None:
    doc = load(read("field-notes.txt"), "text/plain")
    assert doc.text == read("field-notes.txt").decode("utf-8")
    assert "灯台はとても美しい" in doc.text and "🐋" in doc.text
    assert (doc.title, doc.pages, doc.sections, doc.breaks) == (None, [], [], [])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xef\xbb\xbfcaf\xc3\xa9", "café"),  # UTF-8 with BOM
        ("café\r\nbar".encode("utf-16"), "café\nbar"),  # UTF-16 with BOM
        (b"one\r\ntwo\rthree\n", "one\ntwo\nthree\n"),
        (b"caf\xe9 \x93quoted\x94", "café “quoted”"),  # not UTF-8: Windows-1252
    ],
    ids=["utf8-bom", "utf16-bom", "newlines", "cp1252-fallback"],
)
def test_decoding(raw: bytes, expected: str) -> None:
    assert decode_text(raw) == expected
    assert load(raw, "text/plain").text == expected


def test_declared_charset_is_used() -> None:
    assert load("naïve".encode("latin-1"), "text/plain; charset=ISO-8859-1").text == "naïve"


def test_unknown_charset_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="encoding"):
        load(b"x", "text/plain; charset=klingon")


def test_binary_bytes_are_not_text() -> None:
    with pytest.raises(DocumentError, match="binary"):
        load(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/plain")


# ---- Markdown -----------------------------------------------------------------------------


def test_markdown_headings_become_sections_and_breaks() -> None:
    raw = read("install-guide.md")
    doc = load(raw, "text/markdown")
    # Kept as written, less the YAML front matter (metadata, not prose).
    assert doc.text == raw.decode().split("---\n", 2)[2]
    assert doc.text.startswith("\n# Widget Guide")
    assert "author: Docs team" not in doc.text
    assert doc.title == "Widget installation guide"  # front matter wins over the first H1
    paths = [path for _, path in doc.sections]
    assert paths == [
        "Widget Guide",
        "Widget Guide > Install",
        "Widget Guide > Install > Linux",
        "Widget Guide > Install > Windows",
        "Widget Guide > Configuration",  # setext heading, level 2
        "Widget Guide > Troubleshooting tips",  # inline markup removed
    ]
    for offset, path in doc.sections:
        heading_line = doc.text[offset:].split("\n", 1)[0]
        assert path.rsplit(" > ", 1)[-1].split()[0] in heading_line
    assert doc.breaks == [offset for offset, _ in doc.sections]
    assert "this comment is not a heading" not in " ".join(paths)


def test_markdown_front_matter_description_leads_the_text() -> None:
    # npm's pages: the description is the page's own one-line summary, often
    # the words a user asks with ("Set access level on published packages").
    raw = (
        b"---\ntitle: npm-access\nsection: 1\n"
        b'description: "Set access level on published packages"\n'
        b"description: a second one is ignored\n---\n\n### Synopsis\n\nnpm access\n"
        b"\n### Description\n\nUsed to set access.\n"
    )
    doc = load(raw, "text/markdown")
    assert doc.title == "npm-access"
    assert doc.text.startswith("Set access level on published packages\n\n\n### Synopsis")
    assert "section: 1" not in doc.text and "second one" not in doc.text
    assert [doc.text[o:].split("\n", 1)[0] for o, _ in doc.sections] == [
        "### Synopsis",
        "### Description",
    ]
    assert doc.breaks == [o for o, _ in doc.sections]
    # An empty description, or none, adds nothing.
    bare = load(b"---\ndescription:\n---\n# T\n\nBody.\n", "text/markdown")
    assert bare.text == "# T\n\nBody.\n" and bare.sections == [(0, "T")]


def test_markdown_title_is_the_first_h1_without_front_matter() -> None:
    doc = load(b"Intro text.\n\n# Real Title\n\n## Part\n\nBody.\n", "text/markdown")
    assert doc.title == "Real Title"
    assert doc.sections == [(13, "Real Title"), (27, "Real Title > Part")]


def test_thematic_break_is_not_a_heading() -> None:
    doc = load(b"# T\n\nOne paragraph\nof two lines.\n---\n\nAfter.\n", "text/markdown")
    assert [path for _, path in doc.sections] == ["T"]


def test_markdown_chunks_carry_their_section() -> None:
    doc = load(read("install-guide.md"), "text/markdown")
    chunks = chunk_document(
        "guide",
        doc,
        generation="g",
        settings=ChunkingSettings(
            strategy="tokens", context_tokens=0, chunk_tokens=40, overlap_tokens=8
        ),
        counter=default_token_counter(),
    )
    linux = next(c for c in chunks if "tar xf widget.tar.gz" in c.text)
    assert linux.section == "Widget Guide > Install > Linux"
    troubleshooting = [c for c in chunks if "sensor cable" in c.text]
    assert troubleshooting and all(
        c.section == "Widget Guide > Troubleshooting tips" for c in troubleshooting
    )


# ---- HTML ----------------------------------------------------------------------------------


def test_html_boilerplate_is_stripped_and_title_kept() -> None:
    doc = load(read("greenhouse.html"), "text/html")
    assert doc.title == "Greenhouse care — Garden Wiki"
    for boilerplate in (
        "TRACKING CODE",
        "font-family",
        "Plants",
        "Buy our premium seeds",
        "Enable JavaScript",
        "Subscribe",
        "Privacy",
        "Garden Wiki",
        "Home › Guides",  # class="breadcrumb"
    ):
        assert boilerplate not in doc.text
    assert doc.text.startswith("Greenhouse care\n\nA greenhouse needs ventilation, water")
    assert "saves & spreads water" in doc.text  # entities decoded
    assert "before night.\nUse rain water" in doc.text  # <br> is a line break
    assert "min_temp = 7\nmax_temp = 30" in doc.text  # <pre> kept
    assert "Check emitters weekly.\n\nFlush the line" in doc.text


def test_html_headings_become_sections() -> None:
    doc = load(read("greenhouse.html"), "text/html")
    assert [path for _, path in doc.sections] == [
        "Greenhouse care",
        "Greenhouse care > Watering",
        "Greenhouse care > Watering > Drip irrigation",
        "Greenhouse care > Heating",
    ]
    for offset, path in doc.sections:
        assert doc.text[offset:].startswith(path.rsplit(" > ", 1)[-1])


def test_html_without_title_uses_the_first_h1_and_meta_charset() -> None:
    markup = '<html><head><meta charset="windows-1252"></head><body><h1>Caf\xe9</h1><p>Hi</p>'
    doc = load(markup.encode("cp1252"), "text/html")
    assert doc.title == "Café"
    assert doc.text == "Café\n\nHi"


def test_html_docbook_sidebar_notes_are_content_and_page_navigation_is_not() -> None:
    # A DocBook/publican page: its boxed notes are <div class="sidebar">, its
    # navigation a "docnav" list and a banner. The note held the answer that
    # the loader used to drop (evalsets/debian-handbook, signed-by).
    markup = (
        '<html><body><div id="banner"><a href="/get">Download the ebook</a></div>'
        '<ul class="docnav top"><li><a href="p.html">Prev</a></li><li>Handbook</li></ul>'
        '<div class="section"><h2>6.6. Checking Package Authenticity</h2>'
        "<p>APT needs trusted keys.</p>"
        '<div class="sidebar"><p class="title"><strong>IN PRACTICE</strong> Adding keys</p>'
        "<pre>deb [ signed-by=/usr/share/keyrings/k.gpg ] https://x.example bullseye main</pre>"
        "</div></div>"
        '<div class="sidebar" id="links"><a href="a.html">Apt</a> <a href="b.html">Dpkg</a></div>'
        '<div class="navfooter"><a href="n.html">Next</a> 6.7. Upgrading</div>'
        "</body></html>"
    )
    doc = load(markup.encode(), "text/html")
    assert "signed-by=/usr/share/keyrings/k.gpg" in doc.text
    assert "IN PRACTICE Adding keys" in doc.text
    for chrome in ("Download the ebook", "Prev", "Handbook", "Apt", "Dpkg", "Upgrading"):
        assert chrome not in doc.text


def test_html_with_only_boilerplate_is_empty() -> None:
    with pytest.raises(EmptyDocument):
        load(b"<html><body><nav>Home</nav><script>x()</script></body></html>", "text/html")


# ---- PDF -------------------------------------------------------------------------------------


def test_pdf_text_per_page() -> None:
    doc = load(read("tide-tables.pdf"), "application/pdf")
    assert doc.title == "Tide tables explained"
    assert [page for _, page in doc.pages] == [1, 2, 3]
    starts = [offset for offset, _ in doc.pages] + [len(doc.text)]
    page_texts = [doc.text[a:b] for a, b in pairwise(starts)]
    assert "Spring tides happen" in page_texts[0]
    assert "Reading the columns" in page_texts[1]
    assert "Safety near the shore" in page_texts[2]


def test_pdf_chunks_cite_their_page() -> None:
    doc = load(read("tide-tables.pdf"), "application/pdf")
    chunks = chunk_document(
        "tides.pdf",
        doc,
        generation="g",
        settings=ChunkingSettings(
            strategy="tokens", context_tokens=0, chunk_tokens=30, overlap_tokens=4
        ),
        counter=default_token_counter(),
    )
    safety = next(c for c in chunks if "causeway" in c.text)
    assert safety.page == 3
    assert chunks[0].page == 1


def test_corrupt_pdf_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="PDF"):
        load(b"%PDF-1.4\nthis is not really a pdf", "application/pdf")


def test_truncated_pdf_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="could not be read"):
        load(read("tide-tables.pdf")[:6000], "application/pdf")


def encrypted_copy(user_password: str) -> bytes:
    writer = PdfWriter()
    writer.append(PdfReader(DATA / "tide-tables.pdf"))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_password_protected_pdf_is_refused_clearly() -> None:
    with pytest.raises(DocumentError, match="password"):
        load(encrypted_copy("secret"), "application/pdf")


def test_pdf_encrypted_without_a_user_password_is_read() -> None:
    doc = load(encrypted_copy(""), "application/pdf")
    assert "Safety near the shore" in doc.text


# ---- content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text/plain"),
        ("docs/A.MD", "text/markdown"),
        ("x.markdown", "text/markdown"),
        ("page.htm", "text/html"),
        ("page.html", "text/html"),
        ("r.pdf", "application/pdf"),
        ("https://host.example/files/r.pdf?download=1#p2", "application/pdf"),
        ("archive.zip", None),
        ("README", None),
        (None, None),
    ],
)
def test_content_type_for(name: str | None, expected: str | None) -> None:
    assert content_type_for(name) == expected


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", ""])
def test_type_is_inferred_from_the_file_name(content_type: str | None) -> None:
    doc = load(read("install-guide.md"), content_type, filename="guides/install-guide.md")
    assert doc.title == "Widget installation guide"


def test_declared_type_beats_the_extension() -> None:
    doc = load(b"# Not a heading in plain text", "text/plain", filename="x.md")
    assert doc.sections == []


def test_aliases_and_parameters() -> None:
    assert load(b"# T\n", "Text/X-Markdown; charset=utf-8").title == "T"


def test_unsupported_type_names_the_supported_ones() -> None:
    with pytest.raises(UnsupportedContentType) as raised:
        load(b"PK\x03\x04", "application/zip")
    for supported in SUPPORTED_TYPES:
        assert supported in str(raised.value)
    assert raised.value.code == "unsupported_content_type"


def test_unknown_extension_without_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedContentType, match="content_type"):
        load(b"data", None, filename="blob.bin")


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(b"", "text/plain"), (b"  \n\t\n", "text/plain"), (b"\n\n", "text/markdown")],
)
def test_empty_documents(raw: bytes, content_type: str) -> None:
    with pytest.raises(EmptyDocument):
        load(raw, content_type)
