"""Passages of plain text: ``.txt`` files in, passages of at most ``chunk_tokens`` out.

Copyright and privacy requests arrive as documents (a book, an article, a person's
records), not as question-answer pairs. A ``.txt`` file is one passage whose id is the
file's stem; a folder of them is a set of passages. Documents are rarely the length a
model trains on, so long passages are cut into consecutive chunks of at most
``chunk_tokens`` tokens of the model's tokenizer; training on a chunk then sees the
whole chunk, where encoding the whole document would silently drop its end. Chunking
needs the tokenizer, so it runs once the model is loaded; reading runs before, so a bad
file stops a run before any model is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from obliviate.data.records import Record
from obliviate.errors import ObliviateError

__all__ = ["CHUNK_TOKENS", "chunk_passages", "read_text_file", "read_text_folder"]

#: Default chunk length in tokens: every passage of the built-in benchmark (at most about
#: 250 SmolLM2 tokens) fits whole, and a batch of chunks stays cheap on a CPU.
CHUNK_TOKENS = 256


def read_text_file(path: Path) -> tuple[str, dict[str, Any]]:
    """One ``.txt`` file as ``(where, {"id": stem, "text": ...})`` for ``Record.from_json``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ObliviateError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    if not text.strip():
        raise ObliviateError(f"{path}: the file is empty; add text or remove the file")
    return str(path), {"id": path.stem, "text": text}


def read_text_folder(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``.txt`` file directly in ``path``, in name order, one passage each."""
    for file in sorted(p for p in path.glob("*.txt") if p.is_file()):
        yield read_text_file(file)


def chunk_passages(
    records: Sequence[Record], tokenizer: Any, chunk_tokens: int = CHUNK_TOKENS
) -> list[Record]:
    """Cut every passage longer than ``chunk_tokens`` tokens into consecutive chunks.

    Chunks are cut where a word starts (mid-word only for a word longer than a chunk)
    and stripped of surrounding whitespace; joined with the whitespace between them they
    give the passage back. Chunk ``k`` (from 0) of record ``id`` is ``"<id>#<k>"`` and
    carries in ``meta``: ``source`` (the passage's id), ``chunk`` (``k``) and
    ``chunk_tokens`` (its own length in tokens, special tokens not counted). Facts and
    passages that fit are returned unchanged.
    """
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 1:
        raise ObliviateError(f"chunk_tokens must be a positive whole number, got {chunk_tokens!r}")
    out: list[Record] = []
    for record in records:
        pieces = _split(record.text, tokenizer, chunk_tokens) if record.is_text else None
        if pieces is None:
            out.append(record)
            continue
        for k, (text, n_tokens) in enumerate(pieces):
            meta = record.meta | {"source": record.id, "chunk": k, "chunk_tokens": n_tokens}
            out.append(Record(id=f"{record.id}#{k}", text=text, meta=meta))
    return out


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _token_starts(tokenizer: Any, text: str) -> list[int]:
    """The character offset where each token of ``text`` starts."""
    try:
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # slow (Python) tokenizers have no offsets
        raise ObliviateError(
            "chunking passages needs a fast tokenizer (tokenizer.json); this model's has none"
        ) from None
    return [start for start, _ in encoding["offset_mapping"]]


def _split(text: str, tokenizer: Any, limit: int) -> list[tuple[str, int]] | None:
    """``(chunk text, tokens)`` pairs of a passage longer than ``limit`` tokens, else None.

    Cuts are chosen on the passage's own tokenization. A stripped chunk is tokenised
    again on its own (its first word may come out as more tokens without the space
    before it), and one that exceeds ``limit`` that way is cut a word earlier.
    """
    starts = _token_starts(tokenizer, text)
    if len(starts) <= limit:
        return None

    def span(first: int, end: int) -> str:
        """Tokens ``first`` to ``end`` (exclusive) of the passage, stripped."""
        return text[starts[first] : starts[end] if end < len(starts) else len(text)].strip()

    at_word = [
        i
        for i in range(1, len(starts))
        if text[starts[i]].isspace() or (starts[i] > 0 and text[starts[i] - 1].isspace())
    ]
    pieces: list[str] = []
    first = 0
    while len(starts) - first > limit or _count(tokenizer, span(first, len(starts))) > limit:
        words = [i for i in reversed(at_word) if first < i <= first + limit]
        fits = (i for i in words if _count(tokenizer, span(first, i)) <= limit)
        end = next(fits, min(first + limit, len(starts) - 1))
        if end <= first:  # one token that alone tokenises longer than limit: keep it
            break
        pieces.append(span(first, end))
        first = end
    pieces.append(span(first, len(starts)))
    return [(piece, _count(tokenizer, piece)) for piece in pieces if piece]
