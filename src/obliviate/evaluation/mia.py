"""Membership-inference attacks (MIA) on per-token figures, and MUSE's PrivLeak.

An attack gives each example a score saying how likely it is that the model saw the
example in training. Unlearning should make the forget set look like held-out data, so
the ROC AUC of "forget (members) vs holdout (non-members)" should fall to what a model
retrained without the forget set (the oracle) gets; PrivLeak measures the gap. The four
attacks are the standard ones used by MUSE (Shi et al., 2024, "MUSE: Machine Unlearning
Six-Way Evaluation for Language Models") and open-unlearning.

Inputs are plain numbers from one scoring pass of the model (see :class:`TokenStats`), so
nothing here imports torch and every figure can be checked by hand.

Conventions:

* every attack score is oriented so that HIGHER means "more likely a member"; several
  reference implementations use the opposite sign (a loss), which changes no ordering
  but flips an AUC to ``1 - AUC``;
* inputs must be finite: a NaN means something upstream is broken, and sklearn would
  reject it later with a less helpful message, so it raises ``ValueError`` here.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = [
    "ATTACKS",
    "TokenStats",
    "attack_auc",
    "attack_scores",
    "mia_aucs",
    "muse_privleak",
    "privleak",
    "roc_points",
]

#: Floor on ``sigma`` in Min-K%++. It is the square root of the variance clamp (1e-6) of
#: open-unlearning's implementation, so the scores agree with theirs. ``sigma`` is 0 only
#: when the model's next-token distribution puts all its mass on tokens of one
#: probability (for example, a near-certain token), where ``logprob - mu`` is ~0 too.
_SIGMA_FLOOR = 1e-3


@dataclass(frozen=True)
class TokenStats:
    """Per-token figures of one scored sequence (only labelled tokens).

    ``logprobs``, ``mu`` and ``sigma`` hold one entry per labelled token of the gold
    answer (its closing EOS included); ``mu`` and ``sigma`` are the mean and standard
    deviation of ``log p(z)`` for ``z`` drawn from the model's own next-token
    distribution, which Min-K%++ uses to calibrate each token. ``greedy`` says, per token,
    whether it is the model's most probable next token (what exact memorisation and
    extraction strength count); empty where it was not recorded. Sequences are stored as
    tuples whatever sequence type was passed, and are validated here so that the
    attacks can trust them: non-empty, of equal lengths, finite, ``sigma >= 0``.
    """

    logprobs: tuple[float, ...]  # log p(x_t | x_<t)
    mu: tuple[float, ...]  # E_{z~p(.|x_<t)} log p(z)
    sigma: tuple[float, ...]  # std of log p(z) under the same distribution
    text: str  # the scored text (gold answer), for zlib
    greedy: tuple[bool, ...] = ()  # x_t == argmax_z p(z | x_<t)

    def __post_init__(self) -> None:
        for name in ("logprobs", "mu", "sigma"):
            object.__setattr__(self, name, _finite_tuple(getattr(self, name), name))
        object.__setattr__(self, "greedy", tuple(bool(g) for g in self.greedy))
        lengths = {len(self.logprobs), len(self.mu), len(self.sigma)}
        if len(lengths) != 1:
            raise ValueError(
                f"logprobs, mu and sigma must have one entry per token, got lengths "
                f"{len(self.logprobs)}, {len(self.mu)} and {len(self.sigma)}"
            )
        if self.greedy and len(self.greedy) != len(self.logprobs):
            raise ValueError(
                f"greedy must have one entry per token (or none), got {len(self.greedy)} "
                f"for {len(self.logprobs)} tokens"
            )
        if min(self.sigma) < 0:
            raise ValueError("sigma must be non-negative: it is a standard deviation")
        if not isinstance(self.text, str):
            raise ValueError(f"text must be a string, got {type(self.text).__name__}")


def _finite_tuple(values: Sequence[float], name: str) -> tuple[float, ...]:
    """Return ``values`` as a non-empty tuple of finite floats, or raise ``ValueError``."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a flat sequence of numbers: {exc}") from exc
    if not out:
        raise ValueError(f"{name} is empty: a sequence needs at least one labelled token")
    bad = [i for i, v in enumerate(out) if not math.isfinite(v)]
    if bad:
        raise ValueError(
            f"{name} holds {len(bad)} non-finite value(s), the first at index {bad[0]} "
            f"({out[bad[0]]!r}); check the scoring pass"
        )
    return out


def _mean_of_lowest(values: np.ndarray, k: float) -> float:
    """Mean of the ``max(1, int(k * n))`` smallest of ``n`` values.

    ``int`` rounds down, as in the Min-K% reference code and open-unlearning, and at
    least one token is always kept so that short answers still get a score.
    """
    count = max(1, int(k * values.size))
    return float(np.mean(np.sort(values)[:count]))


def _loss(stats: TokenStats, k: float) -> float:
    """LOSS (Yeom et al., 2018, "Privacy risk in machine learning"): ``mean_t log p(x_t)``.

    The negated average NLL: training lowers the loss of what was trained on.
    """
    return float(np.mean(stats.logprobs))


def _zlib(stats: TokenStats, k: float) -> float:
    """zlib (Carlini et al., 2021, "Extracting training data from large language models").

    ``-(mean NLL) / len(zlib.compress(text))``: dividing by the compressed length (a
    model-free "entropy" of the text) discounts texts that are merely easy, such as
    repetitive ones, which any model predicts well.
    """
    nll = -float(np.mean(stats.logprobs))
    return -nll / len(zlib.compress(stats.text.encode("utf-8")))


def _mink(stats: TokenStats, k: float) -> float:
    """Min-K% Prob (Shi et al., 2024, "Detecting pretraining data from large language models").

    Mean of the k-fraction lowest token log-probs: an unseen text tends to contain a few
    outlier tokens of very low probability, which a seen one lacks.
    """
    return _mean_of_lowest(np.asarray(stats.logprobs), k)


def _minkpp(stats: TokenStats, k: float) -> float:
    """Min-K%++ (Zhang et al., 2024, "Min-K%++: Improved baseline for detecting pre-training
    data from large language models").

    Per token ``z_t = (log p(x_t) - mu_t) / sigma_t``, then the mean of the k-fraction
    lowest ``z_t``. Calibrating by the model's own distribution asks whether ``x_t`` is
    a local maximum of the likelihood (training pushes training tokens to be one)
    rather than merely probable. ``sigma`` is floored at ``_SIGMA_FLOOR``.
    """
    logprobs, mu, sigma = (np.asarray(v) for v in (stats.logprobs, stats.mu, stats.sigma))
    return _mean_of_lowest((logprobs - mu) / np.maximum(sigma, _SIGMA_FLOOR), k)


_ATTACKS: dict[str, Callable[[TokenStats, float], float]] = {
    "loss": _loss,
    "zlib": _zlib,
    "mink": _mink,
    "minkpp": _minkpp,
}

#: The attacks :func:`attack_scores` computes, in a fixed order.
ATTACKS: tuple[str, ...] = tuple(_ATTACKS)


def attack_scores(stats: Sequence[TokenStats], k: float = 0.2) -> dict[str, list[float]]:
    """Per-example score of each attack, oriented so that HIGHER means "more likely a member".

    Returns ``{attack: [score per example]}`` for every name in :data:`ATTACKS`. ``k`` is
    the fraction of tokens Min-K% and Min-K%++ average (``0 < k <= 1``; 0.2 is the value
    the Min-K% paper recommends), rounded down to ``max(1, int(k * n))``
    tokens for an answer of ``n`` tokens; LOSS and zlib ignore it.
    """
    if not 0 < k <= 1:
        raise ValueError(f"k must be a fraction of tokens in (0, 1], got {k}")
    if len(stats) == 0:
        raise ValueError("stats is empty: give at least one scored example")
    for i, item in enumerate(stats):
        if not isinstance(item, TokenStats):
            raise ValueError(f"stats[{i}] must be a TokenStats, got {type(item).__name__}")
    return {name: [attack(item, k) for item in stats] for name, attack in _ATTACKS.items()}


def _labelled(member: Sequence[float], nonmember: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (1 for members) and scores for sklearn, after checking both classes."""
    parts = []
    for name, values in (("member", member), ("nonmember", nonmember)):
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"{name} scores must be a non-empty flat list: an AUC needs both classes"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} scores hold a non-finite value; check the attack inputs")
        parts.append(arr)
    labels = np.concatenate([np.ones(parts[0].size), np.zeros(parts[1].size)])
    return labels, np.concatenate(parts)


def mia_aucs(
    members: dict[str, list[float]], nonmembers: dict[str, list[float]]
) -> dict[str, float]:
    """ROC AUC of each attack at telling members from non-members.

    ``members`` and ``nonmembers`` are outputs of :func:`attack_scores` (typically on the
    forget set and on a held-out set). Returns ``{"loss_auc", "zlib_auc", "mink_auc",
    "minkpp_auc"}``, each ``sklearn.metrics.roc_auc_score`` with members as the positive
    class: 1.0 means every member outscores every non-member, 0.5 is chance (ties count
    half).
    """
    out = {}
    for name in ATTACKS:
        if name not in members or name not in nonmembers:
            raise ValueError(f"scores of attack {name!r} are missing; pass attack_scores(...)")
        labels, scores = _labelled(members[name], nonmembers[name])
        out[f"{name}_auc"] = float(roc_auc_score(labels, scores))
    return out


def attack_auc(
    members: Sequence[TokenStats], nonmembers: Sequence[TokenStats], attack: str, k: float
) -> float:
    """ROC AUC of one attack (a name of :data:`ATTACKS`, at token fraction ``k``) telling
    ``members`` from ``nonmembers``, in the orientation of :func:`mia_aucs`."""
    if attack not in _ATTACKS:
        raise ValueError(f"attack must be one of {', '.join(ATTACKS)}, got {attack!r}")
    if not 0 < k <= 1:
        raise ValueError(f"k must be a fraction of tokens in (0, 1], got {k}")
    labels, scores = _labelled(
        [_ATTACKS[attack](s, k) for s in members], [_ATTACKS[attack](s, k) for s in nonmembers]
    )
    return float(roc_auc_score(labels, scores))


def roc_points(member: list[float], nonmember: list[float]) -> tuple[list[float], list[float]]:
    """The ROC curve ``(fpr, tpr)`` of one attack's scores, for plotting.

    ``sklearn.metrics.roc_curve`` with members as the positive class (its default
    ``drop_intermediate=True`` keeps only the corners a plot needs).
    """
    labels, scores = _labelled(member, nonmember)
    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr.tolist(), tpr.tolist()


def privleak(auc_model: float, auc_oracle: float) -> float:
    """MUSE's PrivLeak: ``(AUC_model - AUC_oracle) / AUC_oracle``.

    Both AUCs are of the same attack on forget (members) vs holdout (non-members), for
    the unlearned model and for the oracle retrained without the forget set. 0 means the
    unlearned model leaks membership exactly as much as the oracle.

    Sign: with the orientation of :func:`mia_aucs`, a positive PrivLeak means
    under-unlearning (the forget set is still easier to detect than for the oracle) and
    a negative one over-unlearning. MUSE's published tables use AUCs of the opposite
    orientation (``1 - AUC``; open-unlearning converts for this), where the original,
    un-unlearned model scores near -100%; to compare with those tables, pass
    ``1 - auc`` for both arguments. The result is a fraction, not a percentage.
    """
    for name, value in (("auc_model", auc_model), ("auc_oracle", auc_oracle)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be an AUC in [0, 1], got {value}")
    if auc_oracle == 0:
        raise ValueError("auc_oracle is 0: PrivLeak divides by it, so it is undefined")
    return (auc_model - auc_oracle) / auc_oracle


def muse_privleak(auc_model: float, auc_oracle: float) -> float | None:
    """PrivLeak as MUSE reports it, from AUCs in this module's orientation.

    MUSE's AUC is ``1 - AUC`` of :func:`mia_aucs` (members are the negative class), so
    this is ``privleak(1 - auc_model, 1 - auc_oracle)``: a model that still holds the
    forget set scores near -1 (MUSE reports its targets at about -100 %), an
    over-unlearned one above 0. None when the oracle's AUC is 1 (MUSE's 0), where the
    ratio is undefined.
    """
    if auc_oracle >= 1.0:
        return None
    return privleak(1.0 - auc_model, 1.0 - auc_oracle)
