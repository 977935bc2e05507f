"""``probe``: read the forgotten fact from the hidden states, not from the answers.

An unlearned model that no longer says an answer may still compute it: the fact is kept
in the residual stream and only its way out is blocked. Three white-box readings show it:

- ``logit_lens``: each decoder layer's state at the end of the question, put through the
  final norm and the output head. When some layer still ranks the gold answer's first
  token first, the answer is computed there and suppressed later.
- ``linear_probe``: a logistic regression trained on the target's states (half of the
  forget groups: people or topics) to tell the gold answer from the wrong ones, applied
  unchanged to the other half (left out when the forget records are one group). When it
  picks the gold answer from this model's states, the model still represents which answer
  is true.
- ``ablation``: the direction in which this model's states moved away from the target's
  (per layer, mean over the forget questions) projected out of its residual stream while
  it answers again. When the answers return, unlearning added a small, removable
  suppression rather than erasing the fact.

"before" is the plain forget questions asked as evaluation asks them (only half of the
groups for the probe). The linear probe and the ablation need the target (``--target``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    NotApplicable,
    Score,
    VariantResult,
    calibrating,
    calibration,
    plain,
    register_attack,
    split_groups,
)
from obliviate.data.records import Record
from obliviate.evaluation.model_outputs import tokenize_prompts
from obliviate.models.encoding import Encoded, collate, encode_fact
from obliviate.models.loader import LoadedModel, load_model

#: The probe's random state: the same records always give the same probe.
PROBE_SEED = 0

#: Prompts per forward pass when reading hidden states.
BATCH_SIZE = 32

#: A layer whose direction is shorter than this fraction of the states it is measured
#: on is left alone: the model and the target agree there.
MIN_DIRECTION_NORM = 1e-5

Hook = Callable[[torch.nn.Module, tuple, object], object]


def _hidden(output: object) -> torch.Tensor:
    """A decoder layer's output hidden states (older transformers wrap them in a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def _with_hidden(output: object, hidden: torch.Tensor) -> object:
    """The layer's output with its hidden states replaced, in the form it came in."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def _layers(model: torch.nn.Module) -> Sequence[torch.nn.Module]:
    return model.get_decoder().layers


@contextlib.contextmanager
def _hooked(model: torch.nn.Module, hooks: dict[int, Hook]) -> Iterator[None]:
    """The model with a forward hook on each given decoder layer; all removed on exit."""
    layers = _layers(model)
    handles = []
    try:
        for index, hook in hooks.items():
            handles.append(layers[index].register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients; the training mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _batch_states(model: torch.nn.Module, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """``last_states`` of one batch (right-padded: the causal mask keeps padding unseen)."""
    batch = {
        k: v.to(model.device)
        for k, v in collate([Encoded(tuple(s), tuple(s)) for s in sequences], 0).items()
    }
    rows = torch.arange(len(sequences), device=model.device)
    last = batch["attention_mask"].sum(1) - 1
    recorded: list[torch.Tensor] = []

    def record(module: torch.nn.Module, inputs: tuple, output: object) -> None:
        recorded.append(_hidden(output)[rows, last].float().cpu())

    with _hooked(model, dict.fromkeys(range(len(_layers(model))), record)):
        model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return torch.stack(recorded)


def last_states(model: torch.nn.Module, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """The hidden state at each sequence's last token after every decoder layer (before
    the final norm), float32 of shape (layers, sequences, hidden).

    Read with hooks rather than ``output_hidden_states``, whose last entry is already
    normed (and differs between transformers versions)."""
    with _evaluating(model):
        chunks = [
            _batch_states(model, sequences[start : start + BATCH_SIZE])
            for start in range(0, len(sequences), BATCH_SIZE)
        ]
    return torch.cat(chunks, dim=1)


def first_answer_token(tokenizer: object, question: str, answer: str) -> int:
    """The answer's first token, as the answer is tokenised after its question."""
    encoded = encode_fact(tokenizer, question, answer)
    return next(t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label >= 0)


def lens_ranks(loaded: LoadedModel, records: Sequence[Record]) -> tuple[torch.Tensor, torch.Tensor]:
    """The gold first token's rank (1 = the top token) and probability at the end of each
    question after every layer, read through the final norm and the output head: two
    tensors of shape (layers, records)."""
    model, tokenizer = loaded.model, loaded.tokenizer
    states = last_states(model, tokenize_prompts(tokenizer, [r.prompt for r in records]))
    gold = torch.tensor([first_answer_token(tokenizer, r.prompt, r.answer) for r in records])
    ranks, probs = [], []
    with _evaluating(model):
        for layer in states:
            hidden = layer.to(model.device, model.dtype)
            logits = model.get_output_embeddings()(model.get_decoder().norm(hidden)).float().cpu()
            picked = logits.gather(1, gold.unsqueeze(1))
            ranks.append(1 + (logits > picked).sum(1))
            probs.append(torch.softmax(logits, dim=1).gather(1, gold.unsqueeze(1)).squeeze(1))
    return torch.stack(ranks), torch.stack(probs)


def logit_lens(
    loaded: LoadedModel, records: Sequence[Record]
) -> tuple[Score, dict[str, float | int]]:
    """Accuracy: the records whose gold first token is ranked first at some layer; prob:
    the mean of its highest probability over the layers. Extra: the mean best rank and the
    layer (0 = the first decoder layer) where records most often reach their best rank
    (the earlier one on a tie)."""
    ranks, probs = lens_ranks(loaded, records)
    best = ranks.min(dim=0).values
    at_best = Counter(layer for layer, _ in (ranks == best).nonzero().tolist())
    score = Score(
        accuracy=int((best == 1).sum()) / len(records),
        prob=float(probs.max(dim=0).values.double().mean()),
        n=len(records),
    )
    return score, {
        "mean_best_rank": float(best.float().mean()),
        "best_layer": at_best.most_common(1)[0][0],
    }


def _candidates(record: Record) -> list[str]:
    """The gold answer, then the wrong ones."""
    return [record.answer, *record.perturbed]


def candidate_features(loaded: LoadedModel, records: Sequence[Record]) -> list[np.ndarray]:
    """Per record, one row per candidate (gold first): the middle decoder layer's state at
    the candidate's last token after the question (its closing EOS left off)."""
    tokenizer = loaded.tokenizer
    sequences = [
        list(encode_fact(tokenizer, r.prompt, answer).input_ids[:-1])
        for r in records
        for answer in _candidates(r)
    ]
    middle = len(_layers(loaded.model)) // 2
    rows = last_states(loaded.model, sequences)[middle].numpy()
    splits = np.cumsum([len(_candidates(r)) for r in records])[:-1]
    return np.split(rows, splits)


def train_probe(features: Sequence[np.ndarray]) -> Pipeline:
    """A logistic regression telling the gold candidate (row 0 of each record) from the
    wrong ones, on standardised features."""
    x = np.concatenate(features)
    y = np.concatenate([np.arange(len(f)) == 0 for f in features]).astype(int)
    classifier = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000, random_state=PROBE_SEED)
    )
    return classifier.fit(x, y)


def probe_score(classifier: Pipeline, features: Sequence[np.ndarray]) -> Score:
    """Accuracy: the records whose gold candidate gets the highest probe score; prob: the
    mean softmax over each record's candidate logits at the gold one."""
    hits, probs = [], []
    for rows in features:
        logits = classifier.decision_function(rows)
        hits.append(int(np.argmax(logits)) == 0)
        weights = np.exp(logits - logits.max())
        probs.append(float(weights[0] / weights.sum()))
    return Score(accuracy=float(np.mean(hits)), prob=float(np.mean(probs)), n=len(features))


def probe_halves(records: Sequence[Record], seed: int) -> tuple[list[Record], list[Record]] | None:
    """The records with wrong answers, split by group (person or topic): the probe trains
    on the first half and is tested on the second. None when they are all one group."""
    with_wrong = [r for r in records if r.perturbed]
    if not with_wrong:
        raise NotApplicable("the forget records have no perturbed answers to probe against")
    try:
        return split_groups(with_wrong, seed)
    except NotApplicable:
        return None


def ablation_directions(
    loaded: LoadedModel, target: LoadedModel, records: Sequence[Record]
) -> dict[int, torch.Tensor]:
    """Per decoder layer, the unit mean of (target − model) states at the end of the forget
    questions; layers where the two agree (a direction of about zero) are left out."""
    prompts = tokenize_prompts(loaded.tokenizer, [r.prompt for r in records])
    theirs, mine = last_states(target.model, prompts), last_states(loaded.model, prompts)
    directions = {}
    for layer, (t, m) in enumerate(zip(theirs, mine, strict=True)):
        direction = (t - m).mean(dim=0)
        if direction.norm() > MIN_DIRECTION_NORM * t.norm(dim=1).mean():
            directions[layer] = direction / direction.norm()
    return directions


def project_out(direction: torch.Tensor) -> Hook:
    """A forward hook that removes ``direction`` (unit length) from a layer's output."""

    def hook(module: torch.nn.Module, inputs: tuple, output: object) -> object:
        hidden = _hidden(output)
        d = direction.to(hidden.device, hidden.dtype)
        return _with_hidden(output, hidden - (hidden @ d).unsqueeze(-1) * d)

    return hook


@contextlib.contextmanager
def ablated(model: torch.nn.Module, directions: dict[int, torch.Tensor]) -> Iterator[None]:
    """The model with each layer's direction projected out of its residual stream after
    that layer; the hooks are removed on exit."""
    with _hooked(model, {layer: project_out(d) for layer, d in directions.items()}):
        yield


def _linear_probe(
    halves: tuple[list[Record], list[Record]],
    loaded: LoadedModel,
    target: LoadedModel,
    asker: Asker,
) -> Measurement:
    """The probe trained on the target's first half, read off this model's second half."""
    train, test = halves
    classifier = train_probe(candidate_features(target, train))
    after = probe_score(classifier, candidate_features(loaded, test))
    return Measurement(asker.score(plain(test)), after)


def _ablation(
    ctx: AuditContext, loaded: LoadedModel, target: LoadedModel, asker: Asker, before: Score
) -> Measurement:
    """The forget questions asked again with the directions towards the target removed
    (the target itself has none: its answers stay as they are)."""
    if target is loaded:
        return Measurement(before, before, {"layers_ablated": 0})
    directions = ablation_directions(loaded, target, ctx.forget)
    with ablated(loaded.model, directions):
        after = asker.for_model(loaded).score(plain(ctx.forget))
    return Measurement(before, after, {"layers_ablated": len(directions)})


@register_attack(
    "probe",
    "white-box: logit lens over the layers, a linear probe trained on the target, "
    "ablation of the direction that separates the model from the target",
    lambda ctx: {
        "probe": "logistic regression, middle decoder layer, trained on half the groups "
        "(none when the forget records are one group)",
        "probe_seed": PROBE_SEED,
    },
)
def probe(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    """The three readings of one model; the target is loaded once for the probe and the
    directions (for the target's own role, the model in hand is it)."""
    if not ctx.target:
        raise NotApplicable("the linear probe is trained on the target; give --target")
    halves = probe_halves(ctx.forget, ctx.seed)
    if calibrating(ctx, role):
        return calibration(
            asker,
            {
                "logit_lens": ctx.forget,
                "linear_probe": halves[1] if halves else [],
                "ablation": ctx.forget,
            },
        )
    before = asker.score(plain(ctx.forget))
    lens, lens_extra = logit_lens(loaded, ctx.forget)
    target = loaded if role == "target" else load_model(ctx.target)
    out: AttackOutput = {"logit_lens": VariantResult(Measurement(before, lens, lens_extra))}
    if halves is not None:
        out["linear_probe"] = VariantResult(_linear_probe(halves, loaded, target, asker))
    out["ablation"] = VariantResult(_ablation(ctx, loaded, target, asker, before))
    return out
