"""HTML: readable text without the page's boilerplate, headings as sections.

Scripts, styles, navigation, forms, hidden elements, and page-level
``header``/``footer``/``aside`` are dropped (a ``header`` inside an
``article`` or ``main`` is content and is kept), as are elements whose class
or id names them as chrome (``class="nav-panel"``, ``class="navfooter"``...)
unless they hold a heading. A ``sidebar`` is dropped only when it is mostly
links: DocBook and Sphinx call their boxed notes "sidebar" too. If the page has a ``main``
element only its content is read. Block elements become paragraphs separated
by blank lines; ``<br>`` is a line break; ``<pre>`` keeps its whitespace. The
title is ``<title>``, else the first ``<h1>``.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

from shared.documents import LoadedDocument

_ALWAYS_DROPPED = (
    "script, style, noscript, template, nav, form, iframe, object, embed, svg, canvas, "
    "button, select, textarea, dialog, [hidden], [aria-hidden=true], [role=navigation], "
    "[role=search]"
)
_PAGE_CHROME = "header, footer, aside, [role=banner], [role=contentinfo], [role=complementary]"
# Boilerplate that only a class or id gives away (generated manuals, site
# templates): whole class tokens, so "article-header" is not matched.
_CHROME_NAMES = (
    "header", "footer", "nav", "navbar", "navigation", "nav-panel", "breadcrumb",
    "breadcrumbs", "menu", "skip-link", "cookie-banner", "toc-sidebar", "headerlink",
    # DocBook XSL and publican page navigation ("Prev Up Home Next"), publican's banner
    "navheader", "navfooter", "docnav", "banner",
)  # fmt: skip
_NAMED_CHROME = ", ".join(f"[class~={name}], [id={name}]" for name in _CHROME_NAMES)
# "sidebar" names two things: a site's link column (chrome) and, in DocBook and
# Sphinx output, a boxed note inside the text ("NOTE", "IN PRACTICE", "TIP"),
# which is content and often the very answer. Only a link list is dropped.
_SIDEBARS = "[class~=sidebar], [id=sidebar]"
_LINK_SHARE = 0.5
_CONTENT_CONTAINERS = frozenset({"article", "main"})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "hr",
        "li", "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot", "thead",
        "tr", "ul",
    }
    | set(_HEADINGS)
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
# A definition term (an API entry's signature in generated reference manuals,
# an option name): it stays on the line right above its description, and a
# chunk prefers to start at it, so that a signature and what it does share a
# chunk instead of being cut apart at the blank line between them.
_TERM = -1
# Marks a <br> among inline text; the parser never yields NUL in text nodes.
_BR = "\x00"


def load_html(markup: str) -> LoadedDocument:
    tree = LexborHTMLParser(markup)
    title = _title(tree)
    _drop_boilerplate(tree)
    root = tree.css_first("main") or tree.body or tree.root
    blocks = _Blocks()
    if root is not None:
        _walk(root, blocks)
    return _assemble(blocks.items, title)


def _title(tree: LexborHTMLParser) -> str | None:
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        text = " ".join(node.text(deep=True).split()) if node is not None else ""
        if text:
            return text
    return None


def _drop_boilerplate(tree: LexborHTMLParser) -> None:
    for node in tree.css(_ALWAYS_DROPPED):
        node.decompose()
    for node in tree.css(_PAGE_CHROME):
        if not _inside_content(node):
            node.decompose()
    for node in tree.css(_NAMED_CHROME):
        # A class is a weaker hint than a tag: keep anything holding a heading.
        if node.css_first("h1, h2, h3") is None:
            node.decompose()
    for node in tree.css(_SIDEBARS):
        if node.css_first("h1, h2, h3") is None and _mostly_links(node):
            node.decompose()


def _mostly_links(node: LexborNode) -> bool:
    total = len("".join(node.text(deep=True).split()))
    linked = sum(len("".join(a.text(deep=True).split())) for a in node.css("a"))
    return total == 0 or linked >= _LINK_SHARE * total


def _inside_content(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in _CONTENT_CONTAINERS:
            return True
        parent = parent.parent
    return False


class _Blocks:
    """Collects paragraphs: ``(text, heading level, 0, or _TERM for a <dt>)``."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int]] = []
        self._inline: list[str] = []

    def text(self, value: str) -> None:
        self._inline.append(value)

    def line_break(self) -> None:
        self._inline.append(_BR)

    def flush(self, heading_level: int = 0) -> None:
        lines = (" ".join(line.split()) for line in "".join(self._inline).split(_BR))
        text = "\n".join(line for line in lines if line)
        self._inline = []
        if text:
            self.items.append((text, heading_level))

    def preformatted(self, value: str) -> None:
        self.flush()
        value = value.strip("\n").rstrip()
        if value.strip():
            self.items.append((value, 0))


def _walk(root: LexborNode, blocks: _Blocks) -> None:
    # An explicit stack: deeply nested pages must not hit the recursion limit.
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        tag = node.tag or ""
        if leaving:
            blocks.flush(_TERM if tag == "dt" else _HEADINGS.get(tag, 0))
        elif tag == "-text":
            blocks.text(node.text_content or "")
        elif tag.startswith("-"):
            continue  # comments, doctype
        elif tag == "pre":
            blocks.preformatted(node.text(deep=True))
        elif tag == "br":
            blocks.line_break()
        else:
            if tag in _BLOCKS:
                blocks.flush()
                stack.append((node, True))
            elif tag in _CELLS:
                blocks.text(" ")
            children = list(node.iter(include_text=True))
            stack.extend((child, False) for child in reversed(children))
    blocks.flush()


def _assemble(items: list[tuple[str, int]], title: str | None) -> LoadedDocument:
    parts: list[str] = []
    sections: list[tuple[int, str]] = []
    terms: list[int] = []
    path: list[tuple[int, str]] = []
    offset = 0
    for i, (text, level) in enumerate(items):
        if level > 0:
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, text.replace("\n", " ")))
            sections.append((offset, " > ".join(name for _, name in path)))
        elif level == _TERM:
            terms.append(offset)
        # A term is followed by one newline (its description is next), others by two.
        joint = "\n" if level == _TERM and i + 1 < len(items) else "\n\n"
        parts.append(text + joint)
        offset += len(text) + len(joint)
    return LoadedDocument(
        text="".join(parts).rstrip("\n"),
        title=title,
        sections=sections,
        breaks=sorted(start for start in {*terms, *(s for s, _ in sections)} if start > 0),
    )
