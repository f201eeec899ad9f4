"""The naive pipeline (``rag eval --baseline naive``): its chunks, and the CLI
printing the product beside it on the same corpus, embedder and questions."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.eval.naive import NaivePage, embedding_text, naive_chunks, naive_page
from cli.main import app
from shared.chunking import word_windows


def test_word_windows_are_200_words_overlapping_by_40_and_cover_every_word() -> None:
    assert word_windows(0, 200, 40) == []
    assert word_windows(150, 200, 40) == [range(0, 150)]
    assert word_windows(200, 200, 40) == [range(0, 200)]
    assert word_windows(201, 200, 40) == [range(0, 200), range(160, 201)]
    windows = word_windows(1000, 200, 40)
    assert [w.start for w in windows] == [0, 160, 320, 480, 640, 800]
    assert windows[-1].stop == 1000
    assert all(len(w) == 200 for w in windows[:-1])


def test_html_main_text_keeps_words_apart_and_drops_page_chrome() -> None:
    markup = (
        "<html><head><title>Fernet — Docs</title></head><body>"
        '<div class="sphinxsidebar" role="navigation"><a href="x">Index</a></div>'
        '<div role="main"><h1>Fernet<a class="headerlink">¶</a></h1>'
        "<dl><dt>encrypt(data)</dt><dd>Encrypts <code>data</code>.</dd></dl>"
        "<script>track()</script></div></body></html>"
    )
    page = naive_page(markup.encode(), "text/html", "fernet.html")
    assert page.title == "Fernet — Docs"
    # Naive: the permalink sign stays, the sidebar and script go, <dt>/<dd> are two words.
    assert page.words == ["Fernet¶", "encrypt(data)", "Encrypts", "data."]


def test_chunks_carry_the_title_line_into_the_embedded_text_only() -> None:
    page = NaivePage("Guide", [f"w{i}" for i in range(230)])
    chunks = naive_chunks("guide.html", page)
    assert [c.ordinal for c in chunks] == [0, 1]
    assert chunks[1].text.split()[0] == "w160"
    assert embedding_text(chunks[0]) == "Guide\n" + chunks[0].text
    assert len({c.chunk_id for c in chunks}) == 2


def test_cli_prints_the_product_beside_the_naive_pipeline(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "tides.md").write_text(
        "# Tides\n\nSpring tides happen at new and full moon, when the sun and moon align.\n"
    )
    (corpus / "kiln.html").write_text(
        "<html><head><title>Kiln</title></head><body><main><h1>Kiln</h1>"
        "<p>Fire stoneware at cone 6, about 1220 degrees Celsius.</p></main></body></html>"
    )
    questions = tmp_path / "q.jsonl"
    rows = [
        {"question": "when are spring tides?", "doc_ids": ["tides.md"], "passage": "full moon"},
        {"question": "how hot to fire stoneware", "doc_ids": ["kiln.html"], "passage": "cone 6"},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["eval", str(questions), "--baseline", "naive", "--corpus", str(corpus)]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path / "data"), "--json"])

    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert [(r["pipeline"], r["mode"]) for r in runs] == [
        ("product", "knn"),
        ("product", "hybrid"),
        ("naive", "knn"),
    ]
    naive = runs[-1]
    assert naive["chunks"] == 2  # one short page, one chunk each
    assert naive["recall@5"] == 1.0 and naive["passage@3"] == 1.0
    text = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path / "data")])
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[0].split()[:4] == ["pipeline", "mode", "chunks", "chunks/s"]
