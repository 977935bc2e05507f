"""Unlearning's two checks: it must forget, and it must not wreck the model on the way.

**No silent no-op.** After training, the forget answers' mean per-token log-probability
(and the forget passages', when there are any) must have fallen by at least
``FORGET_MARGIN`` from the model the run started from; the retain answers' are measured
the same way on an evenly spaced sample (``RETAIN_SAMPLE`` records, or the built-in world
questions without retain data) and recorded beside them. The verdict: ``forgot``, ``weak``
(fell by less than the margin) or ``raised`` (a forget figure rose). Anything but
``forgot`` stops the command unless ``--allow-weak`` is given (``weak_run_message``).

**No silent collapse.** During training the loop calls a :class:`RetainProbe` every
``collapse_check_every`` steps: the mean answer NLL of ``PROBE_SIZE`` fixed retain records
(or world questions with their gold answers). Once it is past the collapse bound, at
``COLLAPSE_FRACTION`` of the way from where it started to ln V (a uniform guess over the
vocabulary) and at least ``COLLAPSE_MIN_RISE`` above the start, the run stops (see
``collapse_bound``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a light module: the command line states the margins in its help
    import torch

    from obliviate.models.encoding import Encoded

FORGET_MARGIN = 0.1
"""Nats per token: the least the forget answers' mean log-probability must fall for an
unlearning run to count as having forgotten (−0.1 nats/token is each answer token ~10 %
less likely than before). A run that cannot move (lr 1e-8) moves it by less than 0.001;
with the tiny recipe's defaults every method lowers it by 0.33 (RMU) to 4.4 (NPO)
nats/token on the tests' tiny target (tests/test_unlearn_defaults.py)."""

RETAIN_SAMPLE = 64
"""Retain records (evenly spaced) whose answers are measured before and after unlearning."""

PROBE_SIZE = 16
"""Retain records (evenly spaced) in the collapse probe, measured every check."""

COLLAPSE_FRACTION = 0.5
"""Where the collapse bound lies, as a fraction of the way from the probe's starting mean
answer NLL to ln V, the NLL of a uniform guess over the V tokens of the vocabulary: past
halfway, the model gives its retain answers' tokens less than the geometric mean of their
starting probability and 1/V — output no better than noise. For a fine-tuned target
(starting NLL ~0.2) that is ~5.5 nats on SmolLM2 (V = 49,152) and ~3.6 on the tiny test
model (V = 1,024). Healthy unlearning stays well below it: with the tiny recipe every
method keeps the tests' probe at or below 2.1 nats/token (NPO; bound 3.6), while GA at
the shared lr 5e-4 (before its own entry) reached 4.0 and CEU 10.2; lr 10 crosses it at
the first step (1959 nats/token)."""


COLLAPSE_MIN_RISE = 1.0
"""Nats per token: the bound lies at least this far above the start (each probe token e
times less likely than at the start), for a probe the model hardly knew to begin with: the
tiny model's world questions start at 6.85, near its ln V of 6.93."""


def collapse_bound(start_nll: float, vocab_size: int) -> float:
    """The probe's mean answer NLL past which training has collapsed: ``COLLAPSE_FRACTION``
    of the way from ``start_nll`` to ln V, and at least ``COLLAPSE_MIN_RISE`` above it."""
    uniform = math.log(vocab_size)
    return start_nll + max(COLLAPSE_FRACTION * (uniform - start_nll), COLLAPSE_MIN_RISE)


def mean_logprob(model: torch.nn.Module, examples: Sequence[Encoded], pad_token_id: int) -> float:
    """Mean over examples of their answers' (or passages') mean per-token log-probability."""
    from obliviate.methods.base import mean_answer_logprob, per_example

    values = per_example(model, examples, pad_token_id, mean_answer_logprob)
    return float(values.mean())


@dataclass
class RetainProbe:
    """The collapse check the training loop calls (``train(health_check=...)``)."""

    examples: Sequence[Encoded]
    pad_token_id: int
    source: str
    """``retain`` (the run's retain records) or ``world`` (the built-in world questions)."""
    start: float
    """Mean answer NLL of the model before unlearning."""
    bound: float
    last: float | None = None
    checks: int = 0

    @classmethod
    def of(
        cls,
        model: torch.nn.Module,
        examples: Sequence[Encoded],
        pad_token_id: int,
        vocab_size: int,
        source: str,
    ) -> RetainProbe:
        """The probe of ``model`` as it is now (before unlearning)."""
        start = -mean_logprob(model, examples, pad_token_id)
        return cls(examples, pad_token_id, source, start, collapse_bound(start, vocab_size))

    def __call__(self, model: torch.nn.Module, step: int) -> str | None:
        self.last = -mean_logprob(model, self.examples, self.pad_token_id)
        self.checks += 1
        if math.isfinite(self.last) and self.last <= self.bound:
            return None
        return (
            f"the {self.source} answers' mean NLL rose from {self.start:.2f} to "
            f"{self.last:.2f} nats/token, past the collapse bound {self.bound:.2f}"
        )

    def record(self, every: int) -> dict[str, Any]:
        return {
            "every": every,
            "records": len(self.examples),
            "source": self.source,
            "start_nll": round(self.start, 4),
            "bound": round(self.bound, 4),
            "last_nll": None if self.last is None else round(self.last, 4),
            "checks": self.checks,
        }


def forget_verdict(figures: dict[str, tuple[float | None, float | None]]) -> dict[str, Any]:
    """The forget check: each measured figure (``answers``, ``passages``: mean per-token
    log-probability before and after) and the verdict, ``forgot`` when every one fell by at
    least ``FORGET_MARGIN``, ``raised`` when one rose, ``weak`` otherwise."""
    measured = {k: (b, a) for k, (b, a) in figures.items() if b is not None and a is not None}
    entry: dict[str, Any] = {
        name: {"before": before, "after": after, "change": after - before}
        for name, (before, after) in measured.items()
    }
    changes = [after - before for before, after in measured.values()]
    if any(change > 0 for change in changes):
        verdict = "raised"
    elif changes and all(change <= -FORGET_MARGIN for change in changes):
        verdict = "forgot"
    else:
        verdict = "weak"
    return entry | {"margin": FORGET_MARGIN, "verdict": verdict}


def weak_run_message(forget: dict[str, Any], lr: float, steps: int) -> str:
    """The one-line error of a run that did not forget (``forget_verdict``'s entry)."""
    what = {"answers": "forget answers'", "passages": "forget passages'"}
    moves = "; ".join(
        f"{what[name]} mean log-prob {f['before']:.3f} → {f['after']:.3f} "
        f"({f['change']:+.4f} nats/token)"
        for name, f in forget.items()
        if name in what
    )
    problem = (
        "unlearning made the forget records more likely"
        if forget["verdict"] == "raised"
        else f"unlearning did not lower the forget records by {FORGET_MARGIN} nats/token"
    )
    return (
        f"{problem} ({moves}); nothing was published; raise --lr or --max-steps (this run: "
        f"lr {lr:g}, {steps} steps), or pass --allow-weak to publish it anyway"
    )
