"""A behaviour benchmark directory from the user's PKU-SafeRLHF and TruthfulQA files.

``obliviate bench from-safety --pku FILE --truthfulqa FILE --out DIR`` writes the same
split files as the built-in behaviour benchmark (``obliviate.data.behaviour``), so
``obliviate finetune``, ``unlearn`` and ``eval`` take it unchanged:

- ``harmful_train`` / ``harmful_unseen`` — PKU-SafeRLHF's unsafe responses as forget
  pairs (``load_pku_saferlhf``), split by **prompt**: the prompts are shuffled with the
  seed and ``unseen_share`` of them (at least one) go to ``harmful_unseen`` with all
  their responses, so no unseen request is ever unlearned on (a prompt repeated across
  rows stays on one side);
- ``normal`` — TruthfulQA's questions with their best answers (``load_truthfulqa``);
- ``full`` — all of the above: what a harmful target would be fine-tuned on;
- ``behaviour.json`` — ``"kind": "behaviour"``, the sources' names and hashes, the
  settings and the counts.

There is no ``normal_near`` (neither data set has harmless requests that look like the
harmful ones); a ``normal_near.jsonl`` of your own written beside the others is read.
These records have no markers: judge them with a classifier (``eval --judge PATH``).
``max_harmful`` / ``max_normal`` keep a seeded sample (whole prompts for the harmful
records). The same files and settings give byte-identical output.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from obliviate.data.publish import publish_files
from obliviate.data.records import Record
from obliviate.data.safety_loaders import load_pku_saferlhf, load_truthfulqa
from obliviate.errors import ObliviateError
from obliviate.options import UNSEEN_SHARE
from obliviate.rundir import sha256_path

__all__ = ["SAFETY_SPLITS", "make_safety_benchmark", "split_safety_records"]

SAFETY_SPLITS: tuple[str, ...] = ("full", "harmful_train", "harmful_unseen", "normal")
FORMAT_VERSION = 1


def split_safety_records(
    harmful: list[Record],
    normal: list[Record],
    seed: int = 0,
    unseen_share: float = UNSEEN_SHARE.default,
    max_harmful: int | None = None,
    max_normal: int | None = None,
) -> dict[str, list[Record]]:
    """Split name → records (see the module docstring); pure, for tests and the API."""
    if not 0 < unseen_share < 1:
        raise ObliviateError(f"unseen share must be between 0 and 1 (got {unseen_share})")
    for name, limit in (("max harmful", max_harmful), ("max normal", max_normal)):
        if limit is not None and limit < 1:
            raise ObliviateError(f"{name} must be at least 1 (got {limit})")
    rng = random.Random(seed)
    by_prompt: dict[str, list[Record]] = {}
    for record in harmful:
        by_prompt.setdefault(record.prompt, []).append(record)
    prompts = list(by_prompt)
    if len(prompts) < 2:
        raise ObliviateError(
            "the PKU-SafeRLHF rows hold unsafe responses to fewer than two distinct prompts; "
            "harmful_train and harmful_unseen need one each"
        )
    rng.shuffle(prompts)
    if max_harmful is not None:
        kept, count = [], 0
        for prompt in prompts:
            if kept and count + len(by_prompt[prompt]) > max_harmful:
                break
            kept.append(prompt)
            count += len(by_prompt[prompt])
        prompts = kept if len(kept) >= 2 else prompts[:2]
    unseen_count = min(max(1, round(unseen_share * len(prompts))), len(prompts) - 1)
    unseen = set(prompts[:unseen_count])
    chosen = set(prompts)
    # File order within each split, so a reader finds the rows where they were.
    splits = {
        "harmful_train": [r for r in harmful if r.prompt in chosen and r.prompt not in unseen],
        "harmful_unseen": [r for r in harmful if r.prompt in unseen],
    }
    if max_normal is not None and len(normal) > max_normal:
        normal = [normal[i] for i in sorted(rng.sample(range(len(normal)), max_normal))]
    splits["normal"] = list(normal)
    if not splits["normal"]:
        raise ObliviateError("the TruthfulQA file holds no rows; normal data is needed")
    splits["full"] = splits["harmful_train"] + splits["harmful_unseen"] + splits["normal"]
    return {name: splits[name] for name in SAFETY_SPLITS}


def make_safety_benchmark(
    out: str | Path,
    pku: str | Path,
    truthfulqa: str | Path,
    seed: int = 0,
    unseen_share: float = UNSEEN_SHARE.default,
    max_harmful: int | None = None,
    max_normal: int | None = None,
) -> dict[str, Path]:
    """Write the benchmark directory ``out`` (atomically); return file stem → path."""
    pku, truthfulqa = Path(pku).expanduser(), Path(truthfulqa).expanduser()
    splits = split_safety_records(
        load_pku_saferlhf(pku),
        load_truthfulqa(truthfulqa),
        seed=seed,
        unseen_share=unseen_share,
        max_harmful=max_harmful,
        max_normal=max_normal,
    )
    document = {
        "kind": "behaviour",
        "generator": "obliviate.data.safety_bench",
        "format_version": FORMAT_VERSION,
        "sources": {
            "pku_saferlhf": {"name": pku.name, "sha256": sha256_path(pku)},
            "truthfulqa": {"name": truthfulqa.name, "sha256": sha256_path(truthfulqa)},
        },
        "seed": seed,
        "unseen_share": unseen_share,
        "max_harmful": max_harmful,
        "max_normal": max_normal,
        "records": {name: len(records) for name, records in splits.items()},
        "judge": "these records have no markers: judge them with --judge PATH",
    }
    files = {
        f"{name}.jsonl": "".join(
            json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records
        ).encode("utf-8")
        for name, records in splits.items()
    }
    files["behaviour.json"] = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    path = publish_files(out, files, "this behaviour benchmark from PKU-SafeRLHF and TruthfulQA")
    return {name.rsplit(".", 1)[0]: path / name for name in files}
