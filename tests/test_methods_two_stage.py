"""RMU, task arithmetic and SKU: what each removes, what each leaves alone, and their
arithmetic (task-vector negation, the choice of λ, SKU's pairs and masks) by hand."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods.base import TrainingContext
from obliviate.methods.scaling import (
    finish_negation,
    largest_scale_within,
    parameter_snapshot,
)
from obliviate.methods.sku import SKU, disassociation_pairs
from obliviate.models.encoding import collate, encode_fact


def _drops(result: dict) -> tuple[float, float]:
    (forget_before, forget_after), (retain_before, retain_after) = (
        result["forget"],
        result["retain"],
    )
    return forget_before - forget_after, retain_before - retain_after


# --- behaviour on the tiny target -------------------------------------------------------


def test_rmu_removes_forget_answers_and_trains_only_the_layers_below_the_steered_one(
    unlearn_tiny, tiny_target
):
    from obliviate.models.loader import load_model

    # The tiny model has 2 layers: ℓ = 2 // 3 = 0, so only layer 0 may move.
    result = unlearn_tiny("rmu", {"alpha": 100.0}, lr=3e-3, max_steps=40)
    forget_drop, retain_drop = _drops(result)
    assert forget_drop >= 1.0
    assert forget_drop > retain_drop + 0.5
    before = dict(load_model(str(tiny_target)).model.named_parameters())
    after = dict(load_model(str(result["out"])).model.named_parameters())
    changed = {name for name, p in after.items() if not torch.equal(p, before[name])}
    assert changed, "no weight moved"
    assert all(name.startswith("model.layers.0.") for name in changed), sorted(changed)


def test_task_vector_negation_lowers_forget_more_than_retain(unlearn_tiny):
    result = unlearn_tiny("task_vector", lr=2e-3)
    forget_drop, retain_drop = _drops(result)
    assert forget_drop >= 1.0
    assert forget_drop > retain_drop + 0.5
    manifest = json.loads((result["out"] / "manifest.json").read_text())
    assert manifest["method_outcome"] == {"scale": 1.0}  # the λ applied, recorded
    assert (
        "decided after training: {'scale': 1.0}" in (result["out"] / "model/README.md").read_text()
    )


def test_sku_lowers_forget_more_than_retain(unlearn_tiny):
    result = unlearn_tiny("sku", lr=2e-3)
    forget_drop, retain_drop = _drops(result)
    assert forget_drop >= 1.0
    assert forget_drop > retain_drop + 0.5


class _ShiftLayer(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.shift


class _ShiftDecoder(nn.Module):
    """Embedding [token, 0] followed by layers that each add a learnt vector."""

    def __init__(self, n_layers: int = 2, vocab: int = 8):
        super().__init__()
        self.embed = nn.Embedding(vocab, 2)
        with torch.no_grad():
            self.embed.weight.zero_()
            self.embed.weight[:, 0] = torch.arange(vocab, dtype=torch.float)
        self.layers = nn.ModuleList(_ShiftLayer(2) for _ in range(n_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        hidden = self.embed(input_ids)
        for layer in self.layers:
            hidden = layer(hidden)
        return SimpleNamespace(last_hidden_state=hidden)


class _ShiftModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder = _ShiftDecoder()
        self.config = SimpleNamespace(hidden_size=2)

    def get_decoder(self) -> nn.Module:
        return self.decoder


def test_rmu_loss_by_hand():
    from obliviate.methods.rmu import RMU

    model = _ShiftModel()
    rmu = RMU(layer=1, steering_coeff=5.0, alpha=10.0)
    rmu.prepare(TrainingContext(model, SimpleNamespace(pad_token_id=0), [], None, [], None))
    assert rmu._update == [0, 1]  # ℓ−2 clipped at 0
    assert not model.decoder.embed.weight.requires_grad
    assert all(p.requires_grad for p in model.decoder.layers.parameters())
    control = rmu._control
    assert control.norm().item() == pytest.approx(5.0)
    with torch.no_grad():
        model.decoder.layers[0].shift.copy_(torch.tensor([1.0, 0.0]))  # h = [token + 1, 0]
    batch = {
        "input_ids": torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),
        "labels": torch.tensor([[-100, -100, 3, 4], [-100, 6, -100, -100]]),
    }
    # Steered: the positions whose next token is a label, holding tokens 2, 3 and 5.
    expected_forget = (
        sum((torch.tensor([t + 1.0, 0.0]) - control).square().sum() for t in (2, 3, 5)) / 3
    )
    # Retain: every non-padding token moved by [1, 0] from the frozen copy: ‖·‖² = 1.
    loss, logs = rmu.loss(model, batch, batch)
    assert logs["forget_activation_loss"] == pytest.approx(expected_forget.item(), rel=1e-6)
    assert logs["retain_activation_loss"] == pytest.approx(1.0)
    assert loss.item() == pytest.approx(expected_forget.item() + 10.0, rel=1e-6)
    with pytest.raises(ObliviateError, match="update_layers"):
        RMU(layer=0, update_layers="0,1").prepare(
            TrainingContext(_ShiftModel(), SimpleNamespace(pad_token_id=0), [], None, [], None)
        )


# --- task-vector arithmetic and the choice of λ -----------------------------------------


def _linear_at(value: float) -> nn.Linear:
    layer = nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(value)
        layer.bias.fill_(value)
    return layer


def test_negation_by_hand_original_1_finetuned_3_scale_half_gives_0():
    layer = _linear_at(1.0)
    original = parameter_snapshot(layer)
    with torch.no_grad():  # "training" moves every weight from 1 to 3
        layer.weight.fill_(3.0)
        layer.bias.fill_(3.0)
    used = finish_negation(layer, original, scale=0.5)
    assert used == 0.5
    assert layer.weight.item() == pytest.approx(0.0)  # 1 − 0.5 · (3 − 1)
    assert layer.bias.item() == pytest.approx(0.0)


def test_scale_selection_takes_the_largest_scale_within_tolerance():
    accuracy = {0.0: 0.90, 0.25: 0.90, 0.5: 0.89, 1.0: 0.87, 1.5: 0.86, 2.0: 0.84, 3.0: 0.5}
    asked: list[float] = []

    def fake(scale: float) -> float:
        asked.append(scale)
        return accuracy[scale]

    # 0.90 − 0.05 = 0.85: 2.0 (0.84) and 3.0 fail, 1.5 (0.86) passes.
    assert largest_scale_within(fake, tolerance=0.05) == 1.5
    assert asked == [0.0, 3.0, 2.0, 1.5]  # baseline, then largest first; stops at the answer
    assert largest_scale_within(fake, tolerance=0.5) == 3.0
    assert largest_scale_within(lambda s: 1.0 - s, tolerance=0.01) == 0.25  # none pass


def test_selected_scale_is_the_one_left_in_the_model():
    layer = _linear_at(1.0)
    original = parameter_snapshot(layer)
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.bias.fill_(3.0)
    # Accuracy falls by 0.1 per unit the weight moves from 1: λ moves it by 2λ, so
    # tolerance 0.35 admits λ ≤ 1.75, and the grid's largest such λ is 1.5.
    used = finish_negation(
        layer,
        original,
        scale=1.0,
        utility=lambda m: 1 - 0.1 * abs(m.weight.item() - 1),
        tolerance=0.35,
    )
    assert used == 1.5
    assert layer.weight.item() == pytest.approx(1 - 1.5 * 2)


# --- SKU: random pairs and masks ---------------------------------------------------------

RECORDS = [
    Record(id="a", prompt="Where was Ann born?", answer="Paris"),
    Record(id="b", prompt="Where was Bob born?", answer="paris "),  # same answer as Ann's
    Record(id="c", prompt="Where was Cy born?", answer="Lima"),
    Record(id="d", prompt="Where was Di born?", answer="Oslo"),
    Record(id="e", prompt="Where was Ed born?", answer="Rome"),
    Record(id="t", text="A passage has no question to pair."),
]


def test_sku_pairs_never_use_an_examples_own_answer_and_repeat_with_the_seed():
    pairs = disassociation_pairs(RECORDS, k=2, seed=0)
    for i, others in enumerate(pairs[:5]):
        assert len(others) == 2 and len(set(others)) == 2
        own = RECORDS[i].answer.strip().lower()
        assert all(j != i and RECORDS[j].answer.strip().lower() != own for j in others)
        assert all(not RECORDS[j].is_text for j in others)
    assert pairs[5] == ()
    assert disassociation_pairs(RECORDS, k=2, seed=0) == pairs
    assert any(disassociation_pairs(RECORDS, k=2, seed=s) != pairs for s in range(1, 6))
    with pytest.raises(ObliviateError, match="lower k"):
        disassociation_pairs(RECORDS, k=4, seed=0)  # Ann has only 3 other answers


class _PositionwiseLM(nn.Module):
    """A language model whose hidden state at each position depends on that token only,
    so a token can change the logits at its own position and nowhere else."""

    def __init__(self, vocab: int, dim: int = 16):
        super().__init__()
        self.decoder = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def get_decoder(self):
        return lambda input_ids, attention_mask: SimpleNamespace(
            last_hidden_state=self.decoder(input_ids)
        )

    def get_output_embeddings(self) -> nn.Module:
        return self.head


def _positionwise_setup(n_facts: int) -> tuple[object, _PositionwiseLM, list, list]:
    """The tiny tokenizer, a seeded ``_PositionwiseLM`` over it, the first ``n_facts``
    records and their encodings."""
    from obliviate.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = _PositionwiseLM(len(tokenizer))
    facts = RECORDS[:n_facts]
    return tokenizer, model, facts, [encode_fact(tokenizer, r.prompt, r.answer) for r in facts]


def test_sku_loss_ignores_prompt_and_padding_tokens():
    tokenizer, model, facts, encoded = _positionwise_setup(5)
    sku = SKU(k=2)
    sku.prepare(TrainingContext(model, tokenizer, encoded, encoded, facts, facts))
    with torch.no_grad():  # move away from the frozen copy, so the KL term is not 0
        model.head.weight.add_(0.5 * torch.randn_like(model.head.weight))

    def batch(rows: list[int]) -> dict[str, torch.Tensor]:
        out = collate([encoded[i] for i in rows], tokenizer.pad_token_id)
        return out | {"index": torch.tensor(rows)}

    forget, retain = batch([0, 2, 3]), batch([1, 4])
    baseline, logs = sku.loss(model, forget, retain)
    assert logs["retain_kl"] > 0 and logs["disassociation_nll"] > 0

    def edited(b: dict[str, torch.Tensor], where: torch.Tensor, token: int) -> dict:
        return b | {
            "input_ids": torch.where(where, torch.full_like(b["input_ids"], token), b["input_ids"])
        }

    def prompt_not_last(b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Prompt positions whose next token is prompt too (their logits predict no label)."""
        unlabelled = b["labels"] == -100
        where = torch.zeros_like(unlabelled)
        where[:, :-1] = unlabelled[:, :-1] & unlabelled[:, 1:] & (b["attention_mask"][:, 1:] == 1)
        return where

    other = tokenizer.convert_tokens_to_ids("<bos>")
    for b_forget, b_retain in [
        (
            edited(forget, forget["attention_mask"] == 0, other),
            edited(retain, retain["attention_mask"] == 0, other),
        ),
        (
            edited(forget, prompt_not_last(forget), other),
            edited(retain, prompt_not_last(retain), other),
        ),
    ]:
        assert (b_forget["input_ids"] != forget["input_ids"]).any()
        assert sku.loss(model, b_forget, b_retain)[0].item() == pytest.approx(
            baseline.item(), abs=1e-6
        )
    sku._pad_token_id = other  # the mismatched pairs' padding, too
    assert sku.loss(model, forget, retain)[0].item() == pytest.approx(baseline.item(), abs=1e-6)
    # Control: an answer token does count, in the forget batch and in the retain KL.
    answer = torch.zeros_like(forget["labels"], dtype=torch.bool)
    answer[0, (forget["labels"][0] != -100).nonzero()[0]] = True
    assert sku.loss(model, edited(forget, answer, other), retain)[0].item() != pytest.approx(
        baseline.item(), abs=1e-6
    )
    answer = torch.zeros_like(retain["labels"], dtype=torch.bool)
    answer[0, (retain["labels"][0] != -100).nonzero()[0]] = True
    changed = sku.loss(model, forget, edited(retain, answer, other))[1]["retain_kl"]
    assert changed != pytest.approx(logs["retain_kl"], abs=1e-6)


def test_perplexity_selection_takes_the_largest_scale_keeping_retain_perplexity_within_5pc():
    from obliviate.methods.scaling import SCALE_GRID, answer_logprob, negate_task_vector
    from obliviate.methods.task_vector import TaskVector

    tokenizer, model, facts, encoded = _positionwise_setup(5)
    method = TaskVector(select_scale=True, select_by="perplexity", tolerance=0.05)
    method.prepare(TrainingContext(model, tokenizer, encoded, encoded, facts, facts))
    original = parameter_snapshot(model)
    with torch.no_grad():  # "stage 1" moves the head: τ
        model.head.weight.add_(0.02 * torch.randn_like(model.head.weight))
    finetuned = parameter_snapshot(model)
    method.finalize(model)

    # The same rule by hand: perplexity exp(−mean answer log-prob) of θ_orig − λ·τ.
    probe = _PositionwiseLM(len(tokenizer))
    ratios = {}
    for scale in (0.0, *SCALE_GRID):
        negate_task_vector(probe, original, finetuned, scale)
        ratios[scale] = math.exp(-answer_logprob(probe, encoded, tokenizer.pad_token_id))
    ratios = {scale: ppl / ratios[0.0] for scale, ppl in ratios.items()}
    kept = [scale for scale in SCALE_GRID if ratios[scale] <= 1.05]
    assert min(SCALE_GRID) < max(kept) < max(SCALE_GRID), ratios  # a choice to make
    assert method.chosen_scale == max(kept)
    assert method.outcome() == {"scale": max(kept)}
    expected = original["head.weight"] - max(kept) * (
        finetuned["head.weight"] - original["head.weight"]
    )
    assert torch.allclose(model.head.weight, expected)


def test_scale_selection_by_an_unknown_utility_or_without_retain_data_says_what_to_do():
    from obliviate.methods.task_vector import TaskVector

    with pytest.raises(ObliviateError, match="select_by must be one of accuracy, perplexity"):
        TaskVector(select_by="bleu")
    tokenizer, model, facts, encoded = _positionwise_setup(2)
    method = TaskVector(select_scale=True, select_by="perplexity")
    with pytest.raises(ObliviateError, match="pass --retain FILE"):
        method.prepare(TrainingContext(model, tokenizer, encoded, None, facts, None))
