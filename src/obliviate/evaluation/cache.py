"""Evaluations of unchanged models, kept by content hash.

A demo run evaluates the same cached target and oracle every time; a fine-tuned model
evaluated on the same records, in the same precision, by the same evaluation code gives
the same outputs, so the second evaluation is read back instead of recomputed. The key
hashes everything the outputs depend on: every file of the model directory, the records
of every split (and passages), the precision and text settings, and the source of the
evaluation code and the record encoding, and the versions of the libraries (torch,
transformers, …), so any change to one of them misses the cache. A LoRA adapter's key
adds its base model's fingerprint (the same adapter over another base is another model).
Entries live under ``$OBLIVIATE_CACHE/evaluations`` beside the fine-tunes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from obliviate.cache import code_fingerprint, content_key
from obliviate.data.records import Record
from obliviate.evaluation.text import TextSettings
from obliviate.models.loader import base_fingerprint
from obliviate.rundir import package_versions, sha256_path

#: The folder of the cache that holds evaluations.
KIND = "evaluations"

#: The source whose change changes what an evaluation produces: the evaluation package,
#: how prompts and answers are encoded, how models are loaded, and how an answer is
#: judged right (``data/answers.py``).
_CODE = ("evaluation", "models", "data/answers.py")


def evaluation_key(
    model_dir: Path,
    splits: dict[str, list[Record]],
    precision: str,
    passages: dict[str, list[Record]] | None,
    text_settings: TextSettings,
) -> str:
    """The content hash of one model's evaluation (see the module's docstring)."""
    base = base_fingerprint(str(model_dir))
    return content_key(
        ({"base": base} if base is not None else {})
        | {
            "model": sha256_path(model_dir),
            "splits": {name: [r.to_json() for r in records] for name, records in splits.items()},
            "passages": (
                {role: [r.to_json() for r in records] for role, records in passages.items()}
                if passages
                else None
            ),
            "precision": precision,
            "text_settings": asdict(text_settings),
            "code": code_fingerprint(_CODE),
            "versions": package_versions(),
        }
    )
