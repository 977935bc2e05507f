"""MUSE's text figures: VerbMem, KnowMem, PrivLeak and the four verdicts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from obliviate import api
from obliviate.data.loaders import load_records, save_records
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.evaluation.metrics import SplitOutputs
from obliviate.evaluation.mia import TokenStats
from obliviate.evaluation.statistics import rouge_f1, rouge_recall
from obliviate.evaluation.text import (
    TextFigures,
    TextSettings,
    knowmem,
    mink_auc,
    minkpp_auc,
    prepare_passages,
    run_passages,
    text_privleak,
    verbatim_task,
    verbmem,
    verdicts,
)
from obliviate.models.tiny import tiny_model, tiny_tokenizer
from obliviate.train.recipes import load_recipe

PASSAGE = (
    "Where was Rindo Roselund born? Tallinn. In what year was Rindo Roselund born? 1934. "
    "What is the profession of Rindo Roselund? astronomer."
)

# ----------------------------------------------------------------------------- VerbMem


def test_verbmem_is_the_mean_rouge_l_f1_of_the_continuations():
    # LCS("the cat sat on the mat", "the cat sat") = 3: precision 3/3, recall 3/6, F1 2/3.
    references = ["the cat sat on the mat", "a quiet river runs"]
    continuations = ["the cat sat", "a quiet river runs"]
    assert verbmem(references, continuations) == pytest.approx((2 / 3 + 1) / 2)
    assert verbmem([], []) is None


def test_verbmem_scores_without_a_stemmer_as_muse_does():
    """MUSE's scorer has no Porter stemmer: "writes novels" is not "write novel" (TOFU's
    stemmed ROUGE would count both words)."""
    assert verbmem(["she writes novels"], ["she write novel"]) == pytest.approx(1 / 3)
    assert rouge_f1("she writes novels", "she write novel", stemmer=True) == 1.0


def test_verbatim_task_cuts_the_passage_at_the_prompt_tokens():
    tokenizer = tiny_tokenizer()
    ids = tokenizer(PASSAGE)["input_ids"]
    prompt, reference = verbatim_task(
        tokenizer, PASSAGE, TextSettings(prompt_tokens=5, continuation_tokens=7)
    )
    assert prompt == ids[:5]
    assert reference == tokenizer.decode(ids[5:12]).strip()
    _, nothing_left = verbatim_task(tokenizer, PASSAGE, TextSettings(prompt_tokens=len(ids)))
    assert nothing_left == ""


class Parrot(torch.nn.Module):
    """The tiny model, except that it continues every passage it was shown word for word
    (its scoring pass is the tiny model's own)."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__()
        self.inner, self.tokenizer = tiny_model()
        self.book = [self.tokenizer(t)["input_ids"] for t in texts]

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def get_decoder(self) -> torch.nn.Module:
        return self.inner.get_decoder()

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.inner.get_output_embeddings()

    def generate(self, input_ids, attention_mask, max_new_tokens, pad_token_id, **_):
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            prompt = [token for token, seen in zip(ids, mask, strict=True) if seen]
            book = next(b for b in self.book if b[: len(prompt)] == prompt)
            rest = book[len(prompt) : len(prompt) + max_new_tokens]
            rows.append(rest + [pad_token_id] * (max_new_tokens - len(rest)))
        return torch.cat([input_ids, torch.tensor(rows, dtype=torch.long)], dim=1)


def test_a_model_that_reproduces_the_passages_has_verbmem_one():
    texts = [PASSAGE, "Which award did Brelo Kelebrook receive? Grevenholt Prize. " * 3]
    records = [Record(id=str(i), text=t) for i, t in enumerate(texts)]
    parrot = Parrot(texts)
    settings = TextSettings(prompt_tokens=6, continuation_tokens=12)
    prepared = prepare_passages(parrot.tokenizer, {"forget": records}, settings)
    outputs = run_passages(parrot, parrot.tokenizer, prepared)
    assert outputs.continuations == prepared.references
    assert verbmem(prepared.references, outputs.continuations) == 1.0
    assert len(outputs.members) == 2 and outputs.nonmembers == []


# ----------------------------------------------------------------------------- KnowMem


def test_knowmem_is_muses_rouge_l_f1_not_the_recall():
    """MUSE's KnowMem (and open-unlearning's rougeL_f1) is the F-measure: a wordy answer
    holding the gold one scores 1/3 here, where the recall would be 1."""
    assert rouge_recall("1980", "He was born in 1980.") == 1.0
    assert rouge_f1("1980", "He was born in 1980.") == pytest.approx(1 / 3)
    stats = TokenStats((-1.0,), (0.0,), (1.0,), "1980")
    facts = SplitOutputs(
        split="forget",
        records=[
            Record(id="a", prompt="When was Ada born?", answer="1980", meta={"person": "Ada"})
        ],
        generated=["He was born in 1980."],
        answer=[stats],
        paraphrased=[stats],
        perturbed=[[]],
    )
    assert knowmem(facts, frozenset({"Ada"})) == pytest.approx(1 / 3)
    assert knowmem(facts, frozenset({"Bo"})) is None


# ----------------------------------------------------------------------------- PrivLeak


def scored(*scores: float) -> list[TokenStats]:
    """Passages of one token whose Min-K% and Min-K%++ scores are the given number
    (x, and (x - 0) / 1)."""
    return [TokenStats((s,), (0.0,), (1.0,), "passage") for s in scores]


def figures(auc: float | None = None, minkpp: float | None = None, **values: float) -> TextFigures:
    """A model's text figures with Min-K% AUC ``auc`` (PrivLeak's) and Min-K%++ AUC ``minkpp``."""
    defaults = {"verbmem": None, "knowmem_forget": None, "knowmem_retain": None}
    return TextFigures(**(defaults | values), minkpp_auc=minkpp, mink_auc=auc)


def test_minkpp_auc_counts_the_member_nonmember_pairs_in_order():
    # members 3, 1 against non-members 2, 0: 3 of the 4 pairs put the member above.
    assert minkpp_auc(scored(3, 1), scored(2, 0), k=0.2) == pytest.approx(0.75)
    # ties count half: (1 vs 1) and (0 vs 0) are halves, (1 vs 0) a whole: 2 of 4.
    assert minkpp_auc(scored(1, 0), scored(1, 0), k=0.2) == pytest.approx(0.5)
    assert minkpp_auc(scored(1), [], k=0.2) is None


def test_privleak_is_the_relative_gap_of_muse_aucs():
    """MUSE's AUC is 1 − ours: (0.25 − 0.5) / 0.5 = −0.5 for a model that still tells its
    passages apart (AUC 0.75) against an oracle at chance."""
    assert text_privleak(figures(0.75), figures(0.5)) == pytest.approx(-0.5)
    assert text_privleak(figures(0.25), figures(0.5)) == pytest.approx(0.5)  # over-unlearned
    assert text_privleak(figures(1.0), figures(0.5)) == pytest.approx(-1.0)
    assert text_privleak(figures(0.75), None) is None
    assert text_privleak(figures(0.75), figures(1.0)) is None  # MUSE's oracle AUC 0


def test_privleak_is_muses_min_k_and_min_k_plus_plus_has_its_own_name():
    """PrivLeak reads the Min-K% AUC (MUSE's Min-40%); privleak_minkpp the Min-K%++ one."""
    model, oracle = figures(0.75, minkpp=0.25), figures(0.5, minkpp=0.5)
    assert text_privleak(model, oracle) == pytest.approx(-0.5)
    assert text_privleak(model, oracle, "minkpp") == pytest.approx(0.5)
    assert TextSettings().mink_k == 0.4 and TextSettings().minkpp_k == 0.2
    # five tokens at k = 0.4: the mean of the two lowest; both members' pairs above the
    # non-member's: (-1 + -2) / 2 = -1.5 and -1 against (-3 + -3) / 2 = -3
    members = [TokenStats((-1, -2, 0, 0, 0), (0,) * 5, (1,) * 5, "p"), *scored(-1)]
    assert mink_auc(members, [TokenStats((-3,) * 5, (0,) * 5, (1,) * 5, "h")], k=0.4) == 1.0


def test_the_oracle_evaluated_as_the_model_has_privleak_zero():
    oracle = figures(mink_auc(scored(2, 0.5, -1), scored(1, 0, -2), k=0.4))
    assert text_privleak(oracle, oracle) == 0.0


# ----------------------------------------------------------------------------- verdicts


def test_verdicts_follow_their_written_rules():
    settings = TextSettings()
    oracle = figures(verbmem=0.25, knowmem_forget=0.3)
    target = figures(knowmem_retain=0.52)
    model = figures(verbmem=0.2, knowmem_forget=0.3, knowmem_retain=0.5)
    assert verdicts(model, -0.04, oracle, target, settings) == {
        "no_verbmem": True,  # 0.2 ≤ 0.25
        "no_knowmem": True,  # 0.3 ≤ 0.3
        "no_privleak": True,  # |−0.04| ≤ 0.05
        "utility_preserved": True,  # 0.5 ≥ 0.95 × 0.52 = 0.494
    }
    worse = figures(verbmem=0.3, knowmem_forget=0.31, knowmem_retain=0.49)
    assert verdicts(worse, 0.06, oracle, target, settings) == {
        "no_verbmem": False,
        "no_knowmem": False,
        "no_privleak": False,
        "utility_preserved": False,  # 0.49 < 0.494
    }
    assert set(verdicts(model, None, None, None, settings).values()) == {None}


def test_settings_are_checked():
    with pytest.raises(ObliviateError, match="prompt_tokens must be at least 1"):
        TextSettings(prompt_tokens=0)
    with pytest.raises(ObliviateError, match="utility_fraction"):
        TextSettings(utility_fraction=1.5)


# ---------------------------------------------------------------- end to end, tiny model


def biographies(records: list[Record]) -> list[Record]:
    """Two passages per person, each stating half of that person's facts in running text."""
    by_person: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_person[record.person].append(record)
    passages = []
    for person, facts in by_person.items():
        half = (len(facts) + 1) // 2
        for k, part in enumerate((facts[:half], facts[half:])):
            text = " ".join(f"{r.prompt} {r.answer}." for r in part)
            passages.append(Record(id=f"{person}#{k}", text=text, meta={"person": person}))
    return passages


@pytest.fixture(scope="module")
def text_scenario(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Facts and passages side by side in the user's own files; a target fine-tuned on every
    person's facts and passages, an oracle on the retained people's only; the target
    evaluated as the model."""
    root = tmp_path_factory.mktemp("text")
    own = {}
    for role, split in (("forget", "forget10"), ("retain", "retain90"), ("holdout", "holdout")):
        facts = load_records(bench_dir / f"{split}.jsonl")
        own[role] = root / f"{split}.jsonl"
        save_records(own[role], facts + biographies(facts))
    save_records(root / "target.jsonl", load_records(own["forget"]) + load_records(own["retain"]))
    recipe = load_recipe("tiny").finetune
    target = api.finetune("tiny", root / "target.jsonl", root / "target", recipe).out
    oracle = api.finetune("tiny", own["retain"], root / "oracle", recipe).out
    settings = TextSettings(prompt_tokens=16, continuation_tokens=32)
    return api.evaluate(
        str(target),
        root / "run",
        bench=bench_dir,
        oracle=str(oracle),
        target=str(target),
        text_settings=settings,
        **own,
    )


def test_eval_writes_the_text_figures_for_every_model(text_scenario: dict):
    keys = {"verbmem", "knowmem_forget", "knowmem_retain", "privleak", "privleak_minkpp"}
    keys |= {"mink_auc", "minkpp_auc", "verdicts"}
    for entry in (text_scenario, *text_scenario["reference"].values()):
        text = entry["text"]
        assert keys <= set(text)
        assert text["settings"] == asdict(TextSettings(prompt_tokens=16, continuation_tokens=32))
        assert text["n"] == {"forget": 4, "retain": 36, "holdout": 8, "verbmem": 4}
    # KnowMem reuses the evaluation's answers: every forget fact is about a passage's person.
    assert text_scenario["text"]["knowmem_forget"] == pytest.approx(
        text_scenario["splits"]["forget"]["knowmem"]
    )
    run = Path(text_scenario["out"])
    assert "Text (MUSE)" in (run / "report.html").read_text()
    assert "no verbatim memorisation" in (run / "report.md").read_text()


def test_the_oracle_is_its_own_yardstick(text_scenario: dict):
    oracle = text_scenario["reference"]["oracle"]["text"]
    assert oracle["privleak"] == 0.0 and oracle["privleak_minkpp"] == 0.0
    assert [oracle["verdicts"][k] for k in ("no_verbmem", "no_knowmem", "no_privleak")] == [
        True,
        True,
        True,
    ]


def test_a_target_trained_on_the_passages_fails_the_forgetting_verdicts(text_scenario: dict):
    text, oracle = text_scenario["text"], text_scenario["reference"]["oracle"]["text"]
    assert text["verbmem"] > oracle["verbmem"] + 0.2
    assert text["knowmem_forget"] > oracle["knowmem_forget"] + 0.2
    assert text["mink_auc"] > oracle["mink_auc"]
    assert text["privleak"] < -0.05  # MUSE's orientation: still held is negative
    assert text["verdicts"] == {
        "no_verbmem": False,
        "no_knowmem": False,
        "no_privleak": False,
        "utility_preserved": True,  # the target is the model: knowmem_retain ≥ 0.95 × itself
    }


def test_question_answer_evaluation_has_no_text_part(bench_dir: Path, tmp_path: Path):
    facts_only = tmp_path / "forget.jsonl"
    save_records(facts_only, load_records(bench_dir / "forget10.jsonl")[:4])
    document = api.evaluate("tiny", tmp_path / "run", forget=facts_only)
    assert "text" not in document
    assert "Text (MUSE)" not in (Path(document["out"]) / "report.html").read_text()


def test_eval_on_the_benchmark_reads_its_passages(
    tiny_target: Path, tiny_oracle: Path, bench_dir: Path, tmp_path: Path
):
    """The built-in benchmark's <split>.text.jsonl files (one biography per person) are
    picked up without any option; the oracle is the yardstick of PrivLeak."""
    document = api.evaluate(
        str(tiny_target), tmp_path / "run", bench=bench_dir, oracle=str(tiny_oracle)
    )
    people = {
        role: len({r.person for r in load_records(bench_dir / f"{split}.jsonl")})
        for role, split in (("forget", "forget10"), ("retain", "retain90"), ("holdout", "holdout"))
    }
    assert document["text"]["n"] == people | {"verbmem": people["forget"]}
    assert document["reference"]["oracle"]["text"]["privleak"] == 0.0
    assert document["text"]["verdicts"]["utility_preserved"] is None  # no --target
    manifest = (Path(document["out"]) / "manifest.json").read_text()
    assert '"passages"' in manifest
