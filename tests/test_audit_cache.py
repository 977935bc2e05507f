"""The audit's cache: the oracle's and target's attacked figures are read back by later
audits of any model against them, and any change to what they depend on misses."""

from __future__ import annotations

from pathlib import Path

from obliviate.attacks import AuditContext, run_audit
from obliviate.data.loaders import load_records

ATTACKS = ["jailbreak", "quantize"]


def audit(models: dict[str, str], forget, holdout, cache: Path) -> dict:
    context = AuditContext(forget=forget, holdout=holdout, target=models.get("target"))
    return run_audit(models, context, ATTACKS, cache=cache)


def test_oracle_and_target_are_attacked_once_for_every_model(
    unlearn_tiny, tiny_target: Path, tiny_oracle: Path, bench_dir: Path, tmp_path: Path
) -> None:
    forget = load_records(bench_dir / "forget10.jsonl")[:8]
    holdout = load_records(bench_dir / "holdout.jsonl")[:8]
    cache = tmp_path / "cache"
    ga = str(unlearn_tiny("ga", max_steps=12)["out"])
    models = {"model": ga, "oracle": str(tiny_oracle), "target": str(tiny_target)}

    first = audit(models, forget, holdout, cache)
    assert first["cost"]["cached"] == {}
    assert len(list((cache / "attacks").glob("*.json"))) == 2 * len(ATTACKS)

    again = audit(models, forget, holdout, cache)
    assert again["cost"]["cached"] == {"oracle": ATTACKS, "target": ATTACKS}
    assert set(again["cost"]["role_seconds"]) == {"model"}  # neither was loaded
    assert again["attacks"] == first["attacks"]  # the model's own figures recomputed alike

    # Another model under audit: the yardsticks do not depend on it.
    other = audit(models | {"model": str(tiny_oracle)}, forget, holdout, cache)
    assert other["cost"]["cached"] == {"oracle": ATTACKS, "target": ATTACKS}
    for attack, entry in other["attacks"].items():
        for name, variant in entry["variants"].items():
            kept = first["attacks"][attack]["variants"][name]
            assert variant["oracle"] == kept["oracle"] and variant["target"] == kept["target"]

    # Other records: attacked again.
    fewer = audit(models, forget[:6], holdout, cache)
    assert fewer["cost"]["cached"] == {}
    # Without a cache nothing is read back.
    assert (
        run_audit(models, AuditContext(forget=forget, holdout=holdout), ATTACKS)["cost"]["cached"]
        == {}
    )
