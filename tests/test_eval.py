"""`obliviate eval` on the tiny model: the results.json contract and what its figures mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from scipy import stats

from obliviate import api
from obliviate.data.loaders import load_records, save_records

CONTRACT_SPLIT_METRICS = {"accuracy", "prob", "rouge_l", "truth_ratio"}
#: Two questions each in TOFU's own format (its Real Authors and World Facts files: JSON
#: Lines under a .json name, ``question``/``answer``/``perturbed_answer``).
REAL_AUTHORS = [
    {"question": "Who wrote 'Pride and Prejudice'?", "answer": "Jane Austen",
     "perturbed_answer": ["Emily Bronte", "Louisa May Alcott", "Mary Shelley"]},
    {"question": "Who wrote 'The Great Gatsby'?", "answer": "F. Scott Fitzgerald",
     "perturbed_answer": ["Ernest Hemingway", "John Steinbeck", "William Faulkner"]},
]  # fmt: skip
WORLD_FACTS = [
    {"question": "What is the capital of Australia?", "answer": "Canberra",
     "perturbed_answer": ["Sydney", "Melbourne", "Perth"]},
    {"question": "Where would you find the Eiffel Tower?", "answer": "Paris",
     "perturbed_answer": ["Berlin", "London", "Madrid"]},
]  # fmt: skip


def tofu_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def evaluated(tiny_target: Path, tiny_oracle: Path, bench_dir: Path, tmp_path_factory) -> dict:
    """The target evaluated as the model, with the oracle and target references, and with
    Real Authors and World Facts sets in TOFU's format."""
    root = tmp_path_factory.mktemp("eval")
    return api.evaluate(
        str(tiny_target),
        root / "run",
        bench=bench_dir,
        oracle=str(tiny_oracle),
        target=str(tiny_target),
        real_authors=tofu_file(root / "real_authors_perturbed.json", REAL_AUTHORS),
        world_facts=tofu_file(root / "world_facts_perturbed.json", WORLD_FACTS),
    )


def assert_contract(entry: dict) -> None:
    for split in ("forget", "retain", "neighbors", "holdout", "world"):
        assert set(entry["splits"][split]) >= CONTRACT_SPLIT_METRICS, split
    assert {"loss_auc", "zlib_auc", "mink_auc", "minkpp_auc"} == set(entry["mia"])
    assert {"seconds", "peak_rss_mb", "steps", "tokens"} <= set(entry["cost"])
    keys = ("model", "method", "split", "forget_quality", "forget_quality_ks", "forget_quality_n")
    keys += ("forget_quality_target", "model_utility", "model_utility_neighbors", "privleak")
    keys += ("privleak_minkpp", "privleak_aucs")
    for key in keys:
        assert key in entry
    for metric in ("knowmem", "truth_ratio_prob_mean", "exact_memorization"):
        assert 0.0 <= entry["splits"]["forget"][metric] <= 1.0, metric
    assert 0.0 < entry["splits"]["forget"]["extraction_strength"] <= 1.0


def test_results_follow_the_contract(evaluated: dict) -> None:
    assert_contract(evaluated)
    assert_contract(evaluated["reference"]["oracle"])
    assert_contract(evaluated["reference"]["target"])
    assert evaluated["split"] == "forget10"
    assert evaluated["method"] == "finetune"
    assert evaluated["cost"]["steps"] > 0 and evaluated["cost"]["tokens"] > 0
    written = json.loads((Path(evaluated["out"]) / "results.json").read_text())
    assert written["forget_quality"] == evaluated["forget_quality"]


def test_oracle_as_model_has_forget_quality_one_and_privleak_zero(evaluated: dict) -> None:
    oracle = evaluated["reference"]["oracle"]
    assert oracle["forget_quality"] == pytest.approx(1.0)
    assert oracle["privleak"] == pytest.approx(0.0)
    assert oracle["privleak_minkpp"] == pytest.approx(0.0)


def test_forget_quality_comes_with_its_statistic_sample_sizes_and_the_targets(
    evaluated: dict,
) -> None:
    n = evaluated["splits"]["forget"]["n"]
    oracle = evaluated["reference"]["oracle"]
    assert evaluated["forget_quality_n"] == {"model": n, "oracle": oracle["splits"]["forget"]["n"]}
    assert 0.0 < evaluated["forget_quality_ks"] <= 1.0
    # the model here is the target: its forget quality at the same n is its own
    assert evaluated["forget_quality_target"] == evaluated["forget_quality"]
    assert oracle["forget_quality_target"] == evaluated["forget_quality"]


def test_target_is_told_apart_from_the_oracle(evaluated: dict) -> None:
    """The target saw the forget people: its truth ratios differ from the oracle's, and
    membership inference separates its forget answers from holdout ones far better."""
    oracle = evaluated["reference"]["oracle"]
    assert evaluated["forget_quality"] < 0.05
    assert evaluated["splits"]["forget"]["accuracy"] >= 0.8
    assert oracle["splits"]["forget"]["accuracy"] <= 0.2
    assert evaluated["mia"]["loss_auc"] >= 0.9
    assert evaluated["mia"]["minkpp_auc"] > oracle["mia"]["minkpp_auc"] + 0.2
    assert evaluated["privleak_aucs"]["privleak"] > oracle["privleak_aucs"]["privleak"] + 0.2
    assert evaluated["privleak"] < -0.2  # MUSE's orientation: an untouched model is near -1
    assert evaluated["privleak_minkpp"] < -0.2


def test_forget_quality_is_the_ks_test_of_the_examples_truth_ratios(evaluated: dict) -> None:
    mine = [e["truth_ratio"] for e in evaluated["examples"]["forget"]]
    oracle = [e["truth_ratio"] for e in evaluated["reference"]["oracle"]["examples"]["forget"]]
    assert evaluated["forget_quality"] == pytest.approx(stats.ks_2samp(mine, oracle).pvalue)


def test_model_utility_is_tofus_harmonic_mean_with_real_authors_and_world_facts(
    evaluated: dict,
) -> None:
    used = evaluated["model_utility_inputs"]
    assert used == [
        "retain.prob", "retain.rouge_l", "retain.truth_ratio",
        "real_authors.prob_normalized", "real_authors.rouge_l", "real_authors.truth_ratio",
        "world_facts.prob_normalized", "world_facts.rouge_l", "world_facts.truth_ratio",
    ]  # fmt: skip
    assert evaluated["splits"]["real_authors"]["n"] == len(REAL_AUTHORS)
    values = [evaluated["splits"][s][m] for s, m in (name.split(".") for name in used)]
    assert evaluated["model_utility"] == pytest.approx(stats.hmean(values))


def test_model_utility_neighbors_is_the_harmonic_mean_of_the_nine_stated_figures(
    evaluated: dict,
) -> None:
    used = evaluated["model_utility_neighbors_inputs"]
    assert used == [
        "retain.prob", "retain.rouge_l", "retain.truth_ratio",
        "neighbors.prob", "neighbors.rouge_l", "neighbors.truth_ratio",
        "world.prob_normalized", "world.rouge_l", "world.truth_ratio",
    ]  # fmt: skip
    values = [evaluated["splits"][s][m] for s, m in (name.split(".") for name in used)]
    assert evaluated["model_utility_neighbors"] == pytest.approx(stats.hmean(values))


def test_probe_accuracies_and_examples(evaluated: dict) -> None:
    forget = evaluated["splits"]["forget"]
    assert 0.0 <= forget["paraphrase_accuracy"] <= 1.0
    assert 0.0 <= forget["multihop_accuracy"] <= 1.0
    assert evaluated["splits"]["world"]["multihop_accuracy"] is None
    example = evaluated["examples"]["forget"][0]
    assert {"id", "question", "answer", "generated", "correct", "rouge_l", "truth_ratio"} <= set(
        example
    )
    assert len(example["probes"]["paraphrase"]) == 3


def test_eval_command_on_users_own_files(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    forget, retain = tmp_path / "mine-forget.jsonl", tmp_path / "mine-retain.jsonl"
    save_records(forget, load_records(bench_dir / "forget05.jsonl"))
    save_records(retain, load_records(bench_dir / "retain95.jsonl")[:20])
    out = tmp_path / "run"
    args = ["eval", "--model", str(tiny_target), "--forget", str(forget), "--retain", str(retain)]
    assert run_cli([*args, "--out", str(out)], monkeypatch) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["splits"]) == {"forget", "retain", "world"}
    assert results["splits"]["retain"]["n"] == 20
    assert results["forget_quality"] is None and results["mia"] is None
    assert results["model_utility"] is None  # TOFU's needs --real-authors and --world-facts
    assert results["model_utility_neighbors"] is not None
    assert results["forget_quality_n"] is None and results["privleak"] is None


def test_eval_command_takes_tofus_real_authors_and_world_facts(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.jsonl"
    save_records(forget, load_records(bench_dir / "forget05.jsonl")[:4])
    save_records(retain, load_records(bench_dir / "retain95.jsonl")[:4])
    authors = tofu_file(tmp_path / "real_authors_perturbed.json", REAL_AUTHORS)
    facts = tofu_file(tmp_path / "world_facts_perturbed.json", WORLD_FACTS)
    out = tmp_path / "run"
    args = ["eval", "--model", str(tiny_target), "--forget", str(forget), "--retain", str(retain)]
    args += ["--real-authors", str(authors), "--world-facts", str(facts), "--out", str(out)]
    assert run_cli(args, monkeypatch) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["splits"]["world_facts"]["n"] == len(WORLD_FACTS)
    used = [
        results["splits"][s][m] for s, m in (k.split(".") for k in results["model_utility_inputs"])
    ]
    assert len(used) == 9 and results["model_utility"] == pytest.approx(stats.hmean(used))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["inputs"]) >= {"real_authors", "world_facts"}


def test_real_authors_without_wrong_answers_is_one_clear_error(
    tiny_target: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    authors = tofu_file(tmp_path / "authors.json", [{"question": "Who?", "answer": "Me"}])
    args = ["eval", "--model", str(tiny_target), "--forget", str(authors)]
    args += ["--real-authors", str(authors), "--out", str(tmp_path / "r")]
    assert run_cli(args, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "real_authors" in err and "wrong answers" in err


def test_eval_of_a_missing_split_is_one_clear_error(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    args = ["eval", "--model", str(tiny_target), "--bench", str(bench_dir), "--split", "forget07"]
    assert run_cli([*args, "--out", str(tmp_path / "r")], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "forget07" in err and "forget10" in err
    assert not (tmp_path / "r").exists()
