"""Record loaders: every input shape gives the same records, every mistake a clear line.

The error tests pin the contract users rely on: one line naming the file, the line (or
row, or item) and the field. The last tests read TOFU's real files from
``shared/data/tofu`` and are skipped only when that folder is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from obliviate.data.loaders import load_records, load_split, save_records
from obliviate.data.records import Probe, Record
from obliviate.errors import ObliviateError

TOFU_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tofu"


def write_jsonl(path: Path, objs: list[object]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


FACT = {"id": "f1", "prompt": "Where is the Eiffel Tower?", "answer": "Paris"}
TEXT = {"id": "t1", "text": "It was a bright cold day in April."}


# -- round trip and formats ---------------------------------------------------------------


def test_save_then_load_gives_equal_records(tmp_path: Path) -> None:
    records = [
        Record(
            id="a",
            prompt="Qui a écrit « Les Misérables » ?",
            answer="Victor Hugo",
            paraphrases=("Who wrote Les Misérables?",),
            perturbed=("Zola", "Balzac"),
            paraphrased_answer="It was Victor Hugo.",
            probes={"multihop": Probe(prompt="Where was its author born?", answer="Besançon")},
            meta={"person": "Victor Hugo", "score": 0.5},
        ),
        Record(id="b", text="Ein Absatz über Bücher. 日本語も。"),
    ]
    path = tmp_path / "out" / "records.jsonl"
    save_records(path, records)
    assert load_records(path) == records
    raw = path.read_text(encoding="utf-8")
    assert "Misérables" in raw and "日本語" in raw  # ensure_ascii=False
    assert [p.name for p in path.parent.iterdir()] == ["records.jsonl"]  # no temp left


def test_save_replaces_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    save_records(path, [Record(id="old", text="old")])
    save_records(path, [Record(id="new", text="new")])
    assert [r.id for r in load_records(path)] == ["new"]
    assert len(list(tmp_path.iterdir())) == 1


def test_save_refuses_duplicate_ids_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with pytest.raises(ObliviateError, match=r"record 2 .*'id' 'x'.*record 1"):
        save_records(path, [Record(id="x", text="a"), Record(id="x", text="b")])
    assert not path.exists()


def test_save_refuses_non_jsonl_name(tmp_path: Path) -> None:
    with pytest.raises(ObliviateError, match=r"r\.csv.*\.jsonl"):
        save_records(tmp_path / "r.csv", [Record(id="x", text="a")])


def test_jsonl_skips_blank_lines_and_mixes_facts_and_texts(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(f"{json.dumps(FACT)}\n\n   \n{json.dumps(TEXT)}\n", encoding="utf-8")
    records = load_records(path)
    assert [r.id for r in records] == ["f1", "t1"]
    assert not records[0].is_text and records[0].answer == "Paris"
    assert records[1].is_text


def test_json_array(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([FACT, TEXT], indent=2), encoding="utf-8")
    assert [r.id for r in load_records(path)] == ["f1", "t1"]


def test_json_single_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(FACT, indent=2), encoding="utf-8")
    assert [r.id for r in load_records(path)] == ["f1"]


def test_tofu_style_json_is_json_lines_and_maps_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "forget10_perturbed.json",
        [
            {
                "question": "Who wrote X?",
                "answer": "Ann Lee wrote X.",
                "paraphrased_answer": "X is by Ann Lee.",
                "perturbed_answer": ["Bo Kim wrote X.", "Cy Ng wrote X."],
                "paraphrased_question": "X was written by whom?",
            },
            {"question": "Where was Ann Lee born?", "answer": "Oslo.", "perturbed_answer": []},
        ],
    )
    first, second = load_records(path)
    assert first.id == "forget10_perturbed-0" and second.id == "forget10_perturbed-1"
    assert first.prompt == "Who wrote X?"
    assert first.answer == "Ann Lee wrote X."
    assert first.paraphrased_answer == "X is by Ann Lee."
    assert first.perturbed == ("Bo Kim wrote X.", "Cy Ng wrote X.")
    assert first.meta == {"paraphrased_question": "X was written by whom?"}
    assert second.perturbed == ()


def test_tofu_field_and_ours_that_disagree_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "both.jsonl", [{"question": "A?", "prompt": "B?", "answer": "c"}])
    with pytest.raises(ObliviateError, match=r"both\.jsonl:1: .*'question'.*'prompt'"):
        load_records(path)


def test_csv_with_pipe_and_json_lists_and_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "facts.csv"
    path.write_text(
        "id,prompt,answer,paraphrases,perturbed,paraphrased_answer,text\n"
        "a,Capital of France?,Paris,What is France's capital? | Name the capital of France,"
        "Lyon|Nice,It is Paris.,\n"
        'b,"Capital of Japan, please?",Tokyo,"[""Japan\'s capital?""]","[""Kyoto"", ""Osaka""]",,\n'
        "c,,,,,,A passage of text.\n",
        encoding="utf-8",
    )
    a, b, c = load_records(path)
    assert a.paraphrases == ("What is France's capital?", "Name the capital of France")
    assert a.perturbed == ("Lyon", "Nice")
    assert a.paraphrased_answer == "It is Paris."
    assert b.prompt == "Capital of Japan, please?"
    assert b.paraphrases == ("Japan's capital?",)
    assert b.perturbed == ("Kyoto", "Osaka")
    assert b.paraphrased_answer is None and b.meta == {}
    assert c.is_text and c.text == "A passage of text."


def test_csv_text_only_and_tofu_columns(tmp_path: Path) -> None:
    path = tmp_path / "tofu.csv"
    path.write_text(
        "question,answer,perturbed_answer\nWho?,Ann.,Bo.|Cy.\n",
        encoding="utf-8",
    )
    (record,) = load_records(path)
    assert record.id == "tofu-0" and record.prompt == "Who?" and record.perturbed == ("Bo.", "Cy.")


def test_datasets_directory(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {"question": "Who?", "answer": "Ann.", "perturbed_answer": ["Bo.", "Cy."]},
        {"question": "Where?", "answer": "Oslo.", "perturbed_answer": ["Rome."]},
    ]
    out = tmp_path / "forget_ds"
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    records = load_records(out)
    assert [r.id for r in records] == ["forget_ds-0", "forget_ds-1"]
    assert records[0].prompt == "Who?" and records[0].perturbed == ("Bo.", "Cy.")


def test_datasets_directory_fills_missing_columns_as_absent(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    # Arrow stores one schema: columns a row lacks are stored as None.
    rows = [FACT | {"text": None}, TEXT | {"prompt": None, "answer": None}]
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    fact, text = load_records(out)
    assert fact.answer == "Paris" and fact.meta == {}
    assert text.is_text and text.meta == {}


def test_datasets_directory_drops_nested_nulls(tmp_path: Path) -> None:
    """Probes of different names in two rows: Arrow gives each row the other's as None."""
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    rows = [
        FACT | {"probes": {"paraphrase": {"prompt": "Capital of France?", "answer": "Paris"}}},
        FACT | {"id": "f2", "probes": {"crosslingual": {"prompt": "Capitale?", "answer": "Paris"}}},
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(out))
    first, second = load_records(out)
    assert list(first.probes) == ["paraphrase"] and list(second.probes) == ["crosslingual"]


def test_dataset_dict_asks_for_a_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([FACT])
    out = tmp_path / "dd"
    datasets.DatasetDict({"forget": ds, "retain": ds}).save_to_disk(str(out))
    with pytest.raises(ObliviateError, match=r"dd: a DatasetDict with splits forget, retain"):
        load_records(out)
    assert [r.id for r in load_records(out / "forget")] == ["f1"]


def test_load_split_reads_bench_dir(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "forget.jsonl", [FACT])
    write_jsonl(tmp_path / "retain.jsonl", [TEXT])
    assert [r.id for r in load_split(tmp_path, "retain")] == ["t1"]


def test_load_split_missing_lists_available(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "forget.jsonl", [FACT])
    write_jsonl(tmp_path / "retain.jsonl", [TEXT])
    with pytest.raises(ObliviateError, match=r"'world' not found.*forget, retain"):
        load_split(tmp_path, "world")
    with pytest.raises(ObliviateError, match="not found"):
        load_split(tmp_path / "nope", "forget")


# -- errors: file, line and field named ---------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ObliviateError, match=r"nothere\.jsonl: no such file"):
        load_records(tmp_path / "nothere.jsonl")


def test_unsupported_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ObliviateError, match=r"data\.xlsx.*'\.xlsx'.*\.csv, \.parquet"):
        load_records(path)


def test_plain_directory_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(ObliviateError, match=r"not one written by datasets"):
        load_records(tmp_path)


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.json", "empty.csv"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("\n\n" if name != "empty.csv" else "id,prompt,answer\n", encoding="utf-8")
    with pytest.raises(ObliviateError, match=re.escape(name) + r": no records"):
        load_records(path)


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(FACT) + '\n{"id": "x", "prompt": \n', encoding="utf-8")
    with pytest.raises(ObliviateError, match=r"bad\.jsonl:2: not valid JSON \(Expecting value"):
        load_records(path)


def test_malformed_json_array(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"id": "a", "text": "x"},\n  {"id": }\n]', encoding="utf-8")
    with pytest.raises(ObliviateError, match=r"bad\.json:3: not valid JSON"):
        load_records(path)


def test_non_object_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "list.jsonl", [FACT, ["not", "an", "object"]])
    with pytest.raises(ObliviateError, match=r"list\.jsonl:2: expected a JSON object, got list"):
        load_records(path)


def test_missing_required_field_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "miss.jsonl", [FACT, FACT | {"id": "f2", "answer": None}])
    with pytest.raises(ObliviateError, match=r"miss\.jsonl:2: field 'answer' is missing"):
        load_records(path)


def test_missing_required_field_json_array_names_item(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([FACT, {"id": "g", "answer": "x"}]), encoding="utf-8")
    with pytest.raises(ObliviateError, match=r"arr\.json: item \[1\]: field 'prompt' is missing"):
        load_records(path)


def test_missing_required_field_csv_names_row_line(tmp_path: Path) -> None:
    path = tmp_path / "miss.csv"
    path.write_text(
        'id,prompt,answer\na,"Multi\nline?",yes\n\nb,Why?,\n',
        encoding="utf-8",
    )
    # Row b starts on line 5: header 1, row a on lines 2-3, a blank line 4.
    with pytest.raises(ObliviateError, match=r"miss\.csv:5: field 'answer' is missing"):
        load_records(path)


def test_missing_required_field_datasets_names_row(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "dsmiss"
    datasets.Dataset.from_list([FACT, {"id": "g", "prompt": "Q?"}]).save_to_disk(str(out))
    with pytest.raises(ObliviateError, match=r"dsmiss: row 1: field 'answer' is missing"):
        load_records(out)


def test_wrong_type(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "types.jsonl", [FACT | {"perturbed": [1, 2]}])
    with pytest.raises(ObliviateError, match=r"types\.jsonl:1: field 'perturbed' must be a list"):
        load_records(path)
    path = write_jsonl(tmp_path / "types2.jsonl", [TEXT, FACT | {"answer": 42}])
    with pytest.raises(
        ObliviateError, match=r"types2\.jsonl:2: field 'answer' must be a non-empty"
    ):
        load_records(path)


def test_wrong_type_csv_json_list(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,prompt,answer,perturbed\na,Q?,A,"[1, 2]"\n', encoding="utf-8")
    with pytest.raises(ObliviateError, match=r"t\.csv:2: field 'perturbed' must be a list"):
        load_records(path)


def test_csv_row_with_too_many_cells(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("id,prompt,answer\na,Q?,A,extra\n", encoding="utf-8")
    with pytest.raises(ObliviateError, match=r"wide\.csv:2: row has 4 cells .* 3 columns"):
        load_records(path)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dup.jsonl", [FACT, TEXT, FACT | {"answer": "Lyon"}])
    with pytest.raises(
        ObliviateError, match=r"dup\.jsonl:3: field 'id' 'f1' is a duplicate of .*dup\.jsonl:1"
    ):
        load_records(path)


def test_duplicate_default_and_explicit_id_are_caught(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"prompt": "Q?", "answer": "A"}, {"id": "d-0", "text": "x"}]
    )
    with pytest.raises(ObliviateError, match=r"d\.jsonl:2: field 'id' 'd-0' is a duplicate"):
        load_records(path)


def test_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(ObliviateError) as info:
        load_records(path)
    assert "\n" not in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"id": "a", "text": "caf\xe9"}\n')
    with pytest.raises(ObliviateError, match=r"latin\.jsonl:1: .*not UTF-8"):
        load_records(path)


# -- TOFU's real files --------------------------------------------------------------------


@pytest.fixture
def tofu_data() -> Path:
    if not TOFU_DATA.is_dir():
        pytest.skip(f"TOFU data not found at {TOFU_DATA}")
    return TOFU_DATA


@pytest.mark.parametrize(
    ("name", "count"), [("world_facts_perturbed", 117), ("real_authors_perturbed", 100)]
)
def test_real_tofu_utility_files(tofu_data: Path, name: str, count: int) -> None:
    records = load_records(tofu_data / f"{name}.jsonl")
    assert len(records) == count
    assert all(len(r.perturbed) == 3 and r.prompt and r.answer for r in records)
    assert records[0].id == f"{name}-0"
    assert len({r.id for r in records}) == count
    if name == "world_facts_perturbed":
        assert records[0].prompt == "Where would you find the Eiffel Tower?"
        assert records[0].answer == "Paris"
        assert records[0].perturbed == ("Berlin", "London", "Madrid")


def test_real_tofu_eval_log(tofu_data: Path) -> None:
    # The logs hold TOFU's questions and gold answers plus per-example losses; the
    # paraphrased and perturbed answer *texts* are not in them, only their losses
    # (5 perturbed answers per question), which stay in meta.
    path = tofu_data / "eval-logs" / "llama2-7b_full_wd0.01.forget10.jsonl"
    records = load_records(path)
    assert len(records) == 300
    assert [r.id for r in records[:3]] == ["0", "1", "2"]
    assert all(r.prompt and r.answer and not r.is_text for r in records)
    assert all(len(r.meta["perturb_loss"]) == 5 for r in records)
    assert all("avg_paraphrased_loss" in r.meta for r in records)
    assert records[0].meta["generated"] == "The author's full name is Hsiao Yun-Hwa."


def test_trl_prompt_completion_and_chat_messages(tmp_path: Path) -> None:
    """TRL's prompt/completion (plain and conversational) and chat ``messages`` rows load as
    facts without an ``id``; the last assistant turn is the answer, system turns dropped."""
    rows = [
        {"prompt": "Where is the Eiffel Tower?", "completion": "Paris"},
        {
            "prompt": [{"role": "user", "content": "Who wrote Hamlet?"}],
            "completion": [{"role": "assistant", "content": "William Shakespeare"}],
        },
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the capital of Japan?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Tokyo"}]},
            ],
            "topic": "japan",
        },
    ]
    records = load_records(write_jsonl(tmp_path / "mine.jsonl", rows))
    assert [(r.id, r.prompt, r.answer) for r in records] == [
        ("mine-0", "Where is the Eiffel Tower?", "Paris"),
        ("mine-1", "Who wrote Hamlet?", "William Shakespeare"),
        ("mine-2", "What is the capital of Japan?", "Tokyo"),
    ]
    assert records[2].meta == {"topic": "japan"}
    lonely = write_jsonl(
        tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "Hi"}]}]
    )
    with pytest.raises(ObliviateError, match=r"bad.jsonl:1: field 'messages' needs a user turn"):
        load_records(lonely)


def test_parquet_rows(tmp_path: Path) -> None:
    """A Parquet file (as datasets or pandas write it) loads like the same rows in JSONL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "facts.parquet"
    pq.write_table(pa.Table.from_pylist([FACT, {"prompt": "Who?", "answer": "Me"}]), path)
    records = load_records(path)
    assert [(r.id, r.answer) for r in records] == [("f1", "Paris"), ("facts-1", "Me")]
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ObliviateError, match=r"broken\.parquet: not a readable Parquet file"):
        load_records(tmp_path / "broken.parquet")
