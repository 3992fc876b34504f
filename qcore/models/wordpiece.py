"""WordPiece tokenizer of an uncased BERT model (the one all-MiniLM-L6-v2 ships), in plain Python.

``[CLS] wordpieces [SEP]``: BertNormalizer (clean text, CJK spacing, lowercase, strip accents), BertPreTokenizer
(whitespace, then every punctuation character on its own), greedy longest-match-first WordPiece with the ``##``
continuation prefix. Checked against the ``tokenizers`` package on the model's ``tokenizer.json``
(``tests/tools/test_make_samples.py``).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path


def _is_punctuation(ch: str) -> bool:
    """BERT's punctuation: every non-alphanumeric ASCII printable character, and Unicode category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    ranges = (
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    )
    return any(lo <= cp <= hi for lo, hi in ranges)


def _normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, lowercase, strip_accents): drop control characters,
    map whitespace to spaces, space out CJK ideographs, lowercase, then remove combining marks after NFD."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp in (0, 0xFFFD) or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out).lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def _pre_tokenize(text: str) -> list[str]:
    """BertPreTokenizer: split on whitespace, then every punctuation character is a word of its own."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def _wordpiece(word: str, vocab: dict[str, int], max_chars: int = 100) -> list[str]:
    """Greedy longest-match-first WordPiece with the ``##`` continuation prefix; ``[UNK]`` when it fails."""
    if len(word) > max_chars:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def tokenize(text: str, vocab: dict[str, int]) -> list[str]:
    """``[CLS] wordpieces [SEP]`` of an uncased BERT tokenizer (the one all-MiniLM-L6-v2 ships)."""
    pieces = [p for word in _pre_tokenize(_normalize(text)) for p in _wordpiece(word, vocab)]
    return ["[CLS]", *pieces, "[SEP]"]


def read_vocab(path: Path) -> dict[str, int]:
    """``vocab.txt``: one token a line, id = line number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return {tok: i for i, tok in enumerate(lines) if tok}
