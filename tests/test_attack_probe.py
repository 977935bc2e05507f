"""The white-box ``probe`` attack on the tiny model: logit lens, linear probe, ablation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from obliviate.attacks.audit import run_audit
from obliviate.attacks.base import Asker, AuditContext, NotApplicable, plain
from obliviate.attacks.probe import (
    ablated,
    ablation_directions,
    candidate_features,
    first_answer_token,
    lens_ranks,
    probe,
    probe_halves,
    probe_score,
    project_out,
    train_probe,
)
from obliviate.data.loaders import load_records
from obliviate.models.encoding import encode_fact
from obliviate.models.loader import LoadedModel, load_model


@pytest.fixture(scope="module")
def forget(bench_dir: Path):
    return load_records(bench_dir / "forget10.jsonl")


@pytest.fixture(scope="module")
def target(tiny_target: Path) -> LoadedModel:
    return load_model(str(tiny_target))


@pytest.fixture(scope="module")
def ga_model(unlearn_tiny) -> Path:
    """The tiny target after a short gradient ascent: the forget answers are gone."""
    return unlearn_tiny("ga", max_steps=12)["out"]


def logits(loaded: LoadedModel, records) -> torch.Tensor:
    """The logits at every position of each forget question and its answer (one
    right-padded batch): what any change to the model's computation would show in."""
    ids = [list(encode_fact(loaded.tokenizer, r.prompt, r.answer).input_ids) for r in records]
    width = max(map(len, ids))
    batch = torch.tensor([s + [0] * (width - len(s)) for s in ids])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids])
    with torch.no_grad():
        return loaded.model(input_ids=batch, attention_mask=mask).logits


def test_logit_lens_on_the_target_ranks_the_answer_first_at_the_last_layer(target, forget):
    ranks, probs = lens_ranks(target, forget)
    assert ranks.shape == probs.shape == (len(target.model.get_decoder().layers), len(forget))
    answers = Asker(target).answers(plain(forget))
    # Records whose greedy answer starts with the gold answer's first token: the last
    # layer's lens is the model's own next-token distribution, so that token is its top one.
    known = [
        i
        for i, (r, answer) in enumerate(zip(forget, answers, strict=True))
        if answer
        and first_answer_token(target.tokenizer, r.prompt, answer)
        == first_answer_token(target.tokenizer, r.prompt, r.answer)
    ]
    assert len(known) >= 0.8 * len(forget)
    assert all(ranks[-1, i] == 1 for i in known)


def test_zero_directions_leave_the_model_unchanged_and_hooks_come_off(target, forget):
    layers = target.model.get_decoder().layers
    hidden = target.model.config.hidden_size
    plain_logits = logits(target, forget)
    with ablated(target.model, {i: torch.zeros(hidden) for i in range(len(layers))}):
        assert torch.allclose(logits(target, forget), plain_logits)
    # The target compared with itself has no direction to remove.
    assert ablation_directions(target, target, forget) == {}
    direction = torch.nn.functional.normalize(torch.ones(hidden), dim=0)
    with ablated(target.model, {len(layers) - 1: direction}):
        assert not torch.allclose(logits(target, forget), plain_logits)
    assert all(not layer._forward_hooks for layer in layers)
    assert torch.equal(logits(target, forget), plain_logits)


def test_projection_removes_the_direction_from_tuple_and_tensor_outputs():
    direction = torch.nn.functional.normalize(torch.tensor([1.0, 2.0, 2.0]), dim=0)
    hook = project_out(direction)
    hidden = torch.randn(2, 5, 3)
    as_tensor = hook(None, (), hidden)
    as_tuple = hook(None, (), (hidden, "cache"))
    assert torch.allclose(as_tensor @ direction, torch.zeros(2, 5), atol=1e-6)
    assert isinstance(as_tuple, tuple) and as_tuple[1] == "cache"
    assert torch.equal(as_tuple[0], as_tensor)


def test_linear_probe_is_deterministic_and_fits_the_target(target, forget):
    train, test = probe_halves(forget, seed=0)
    assert {r.person for r in train}.isdisjoint({r.person for r in test})
    features = candidate_features(target, train)
    assert [len(f) for f in features] == [1 + len(r.perturbed) for r in train]
    first, second = train_probe(features), train_probe(candidate_features(target, train))
    held_out = candidate_features(target, test)
    assert probe_score(first, held_out) == probe_score(second, held_out)
    # The target's states separate its own training half; the tiny model carries no
    # truth direction that reaches people it was not trained on (see the attack's docs).
    assert probe_score(first, features).accuracy >= 0.8
    assert 0.0 <= probe_score(first, held_out).prob <= 1.0


def test_probe_needs_the_target(target, forget):
    ctx = AuditContext(forget=forget, holdout=[])
    with pytest.raises(NotApplicable, match="give --target"):
        probe(ctx, target, Asker(target), "model")


def test_audit_runs_every_variant_on_every_model_and_removes_its_hooks(
    ga_model: Path, tiny_target: Path, tiny_oracle: Path, forget
):
    ctx = AuditContext(
        forget=forget, holdout=[], target=str(tiny_target), precision="fp32", budget="full"
    )
    loaded = load_model(str(ga_model))
    before = logits(loaded, forget)
    output = probe(ctx, loaded, Asker(loaded), "model")
    assert all(not layer._forward_hooks for layer in loaded.model.get_decoder().layers)
    assert torch.equal(logits(loaded, forget), before)
    assert output["ablation"].forget.extra["layers_ablated"] > 0

    models = {"model": str(ga_model), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    document = run_audit(models, ctx, ["probe"])
    variants = document["attacks"]["probe"]["variants"]
    assert set(variants) == {"logit_lens", "linear_probe", "ablation"}
    for entry in variants.values():
        for role in ("model", "oracle", "target"):
            assert set(entry[role]) >= {"before", "after", "recovery"}
    lens, ablation = variants["logit_lens"], variants["ablation"]
    # The target knows its facts: every gold first token is on top at some layer.
    assert lens["target"]["after"]["accuracy"] >= 0.9
    assert lens["target"]["mean_best_rank"] == 1.0
    # Gradient ascent hid the answers from the output; the lens finds some of them inside.
    assert lens["model"]["after"]["accuracy"] > lens["model"]["before"]["accuracy"]
    assert lens["oracle"]["after"]["accuracy"] < lens["target"]["after"]["accuracy"]
    # Nothing is ablated on the target: its answers are its own.
    assert ablation["target"]["after"] == ablation["target"]["before"]
    assert ablation["target"]["layers_ablated"] == 0
    assert variants["linear_probe"]["model"]["before"]["n"] < len(forget)
