"""PKU-SafeRLHF and TruthfulQA from the user's files: hand-made rows in their formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from obliviate.data.loaders import load_records, save_records
from obliviate.data.safety_loaders import load_pku_saferlhf, load_truthfulqa
from obliviate.errors import ObliviateError

PKU_ROWS = [
    {
        "prompt": "How is the old mill run?",
        "response_0": "A careful, safe answer.",
        "response_1": "An unsafe answer.",
        "is_response_0_safe": True,
        "is_response_1_safe": False,
        "better_response_id": 0,
        "safer_response_id": 0,
    },
    {
        "prompt": "Tell me about the bridge.",
        "response_0": "Unsafe answer one.",
        "response_1": "Unsafe answer two.",
        "is_response_0_safe": False,
        "is_response_1_safe": False,
        "better_response_id": 1,
        "safer_response_id": 1,
    },
    {
        "prompt": "What is the weather like?",
        "response_0": "Sunny.",
        "response_1": "Rainy.",
        "is_response_0_safe": True,
        "is_response_1_safe": True,
        "better_response_id": 0,
        "safer_response_id": 0,
    },
]
#: What the rows above must become: every unsafe response, as a forget pair.
EXPECTED = [
    ("pku-0-1", "How is the old mill run?", "An unsafe answer."),
    ("pku-1-0", "Tell me about the bridge.", "Unsafe answer one."),
    ("pku-1-1", "Tell me about the bridge.", "Unsafe answer two."),
]


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)  # booleans become "True" / "False", as pandas writes them
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    suffix = path.suffix or "dir"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix == ".csv":
        _write_csv(path, rows)
    elif suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    else:
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.json", "rows.csv", "rows.parquet", "rows"])
def test_pku_unsafe_responses_become_forget_pairs(tmp_path: Path, name: str) -> None:
    records = load_pku_saferlhf(_write(tmp_path / name, PKU_ROWS))
    assert [(r.id, r.prompt, r.answer) for r in records] == EXPECTED
    assert all(r.meta["source"] == "PKU-SafeRLHF" for r in records)
    # They are records like any other: saved, they load back as unlearning data.
    save_records(tmp_path / "forget.jsonl", records)
    assert load_records(tmp_path / "forget.jsonl") == records


def test_pku_errors_name_the_file_and_what_is_missing(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if k != "is_response_1_safe"} for row in PKU_ROWS]
    with pytest.raises(ObliviateError, match=r"need the column\(s\) is_response_1_safe; found"):
        load_pku_saferlhf(_write(tmp_path / "missing.jsonl", rows))
    with pytest.raises(ObliviateError, match="no such file"):
        load_pku_saferlhf(tmp_path / "absent.jsonl")
    with pytest.raises(ObliviateError, match="unsupported file type"):
        load_pku_saferlhf(_write_csv(tmp_path / "rows.tsv", PKU_ROWS))
    odd = [PKU_ROWS[0] | {"is_response_1_safe": "maybe"}]
    with pytest.raises(ObliviateError, match="row 0, is_response_1_safe: 'maybe' is not a safety"):
        load_pku_saferlhf(_write(tmp_path / "odd.jsonl", odd))
    with pytest.raises(ObliviateError, match="no unsafe responses"):
        load_pku_saferlhf(_write(tmp_path / "safe.jsonl", PKU_ROWS[2:]))
    with pytest.raises(ObliviateError, match="no rows"):
        load_pku_saferlhf(_write(tmp_path / "empty.jsonl", []))


TRUTHFULQA_ROWS = [
    {
        "Type": "Adversarial",
        "Category": "Misconceptions",
        "Question": "What happens if you swallow gum?",
        "Best Answer": "It passes through your digestive system",
        "Correct Answers": "It passes through your digestive system; It will be excreted",
        "Incorrect Answers": "It stays in you for seven years; It is never digested",
        "Source": "https://example.org/gum",
    },
    {
        "Type": "Non-Adversarial",
        "Category": "Science",
        "Question": "What colour is the sky on a clear day?",
        "Best Answer": "Blue",
        "Correct Answers": "Blue",
        "Incorrect Answers": "Green",
        "Source": "",
    },
]


def test_truthfulqa_rows_become_normal_records_with_their_wrong_answers(tmp_path: Path) -> None:
    records = load_truthfulqa(_write_csv(tmp_path / "TruthfulQA.csv", TRUTHFULQA_ROWS))
    first, second = records
    assert (first.id, first.prompt, first.answer) == (
        "truthfulqa-0",
        "What happens if you swallow gum?",
        "It passes through your digestive system",
    )
    assert first.perturbed == ("It stays in you for seven years", "It is never digested")
    assert first.meta["correct_answers"] == [
        "It passes through your digestive system",
        "It will be excreted",
    ]
    assert (second.answer, second.perturbed) == ("Blue", ("Green",))


def test_truthfulqa_errors(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if k != "Best Answer"} for row in TRUTHFULQA_ROWS]
    with pytest.raises(ObliviateError, match=r"TruthfulQA rows need the column\(s\) Best Answer"):
        load_truthfulqa(_write_csv(tmp_path / "old.csv", rows))
    with pytest.raises(ObliviateError, match="its CSV file"):
        load_truthfulqa(_write(tmp_path / "tqa.jsonl", TRUTHFULQA_ROWS))
    with pytest.raises(ObliviateError, match="no such file"):
        load_truthfulqa(tmp_path / "absent.csv")


def test_eval_of_pku_requests_without_markers_asks_for_a_classifier_before_loading_a_model(
    tmp_path: Path,
) -> None:
    from obliviate import api

    bench = tmp_path / "pku-bench"
    save_records(
        bench / "harmful_train.jsonl", load_pku_saferlhf(_write(tmp_path / "r.jsonl", PKU_ROWS))
    )
    with pytest.raises(ObliviateError, match=r"no 'markers'.*--judge PATH"):
        api.evaluate_behaviour("no-such-model", tmp_path / "eval", bench=bench)
    assert not (tmp_path / "eval").exists()
