"""Render a plain-text file as a simple multi-page PDF (Helvetica, wrapped lines).

Used once to make ``samples/corpus/numpy/masked-arrays.pdf`` from NumPy's
``numpy/ma/README.rst`` so that the sample corpus has a real PDF with
extractable text and several pages. No dependencies beyond the standard
library; the output is deterministic.

    python samples/text_to_pdf.py INPUT.txt OUTPUT.pdf "Title"
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

LINES_PER_PAGE = 56
WRAP_COLUMNS = 95


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_stream(lines: list[str]) -> bytes:
    ops = ["BT", "/F1 9 Tf", "11 TL", "50 800 Td"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def _wrap(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.splitlines():
        wrapped = textwrap.wrap(raw, WRAP_COLUMNS, replace_whitespace=False) or [""]
        out.extend(wrapped)
    return out


def render(text: str, title: str) -> bytes:
    lines = _wrap(text)
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    objects: list[bytes] = []
    # 1: catalog, 2: pages, 3: font, 4: info; then (page, content) pairs.
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    objects.append(f"<< /Title ({_escape(title)}) >>".encode("latin-1"))
    for i, page in enumerate(pages):
        content = 6 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>".encode()
        )
        stream = _page_stream(page)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets: list[int] = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def main() -> None:
    source, target, title = sys.argv[1], sys.argv[2], sys.argv[3]
    Path(target).write_bytes(render(Path(source).read_text(encoding="utf-8"), title))


if __name__ == "__main__":
    main()
