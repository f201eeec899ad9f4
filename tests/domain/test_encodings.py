"""Legacy encodings: detected (charset-normalizer), or the document fails with why."""

from __future__ import annotations

import random

import pytest

from shared.errors import DocumentError
from shared.loaders import decode_text, load

TEXTS = {
    "shift_jis": (
        "日本語のテキストです。これはシフトJISで保存された文書の例です。東京は日本の首都です。"
    ),
    "gbk": "这是一个用GBK编码保存的中文文档。北京是中国的首都，有很多历史名胜。",
    "koi8_r": "Это русский текст в кодировке KOI8-R. Москва является столицей России.",
    "cp1252": "Café crème – “quoted” naïve façade. Grüße aus München, señor.",
}


@pytest.mark.parametrize("encoding", list(TEXTS))
def test_legacy_encodings_are_read_as_what_they_are(encoding: str) -> None:
    text = TEXTS[encoding]
    assert decode_text(text.encode(encoding)) == text
    assert load(text.encode(encoding), "text/markdown").text.strip() == text


def test_short_western_text_keeps_the_windows_1252_reading() -> None:
    assert decode_text("café “quoted”, 5 €".encode("cp1252")) == "café “quoted”, 5 €"


def test_undetectable_bytes_fail_with_a_reason() -> None:
    noise = random.Random(7)
    data = bytes(noise.choice([*range(0x80, 0x100), 0x20, 0x61]) for _ in range(400))
    with pytest.raises(DocumentError, match=r"not UTF-8.*save it as UTF-8"):
        load(data, "text/plain")


def test_too_short_to_tell_fails_rather_than_guessing() -> None:
    with pytest.raises(DocumentError, match="too short or too mixed"):
        decode_text("Привет".encode("koi8_r"))
