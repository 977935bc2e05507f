"""The record: one fact (question + answer) or one passage of text to forget or keep.

Record format (JSON Lines, one object per line), the contract of DESIGN.md:

- fact: ``{"id", "prompt", "answer"}`` plus optional ``"paraphrases"`` (the question
  asked other ways), ``"perturbed"`` (wrong answers of the same type),
  ``"paraphrased_answer"`` (the correct answer worded differently; TOFU's truth ratio
  uses it and falls back to ``answer``) and ``"probes"`` (hard in-scope questions:
  ``{"multihop": {"prompt", "answer"}, "crosslingual": {...}}``; a plain string is a
  question whose answer is the record's own answer);
- text: ``{"id", "text"}`` for raw passages (verbatim / copyright targets).

Any other top-level keys (``person``, ``topic``, ``group``, ``attribute``, ...) are kept in
``meta`` and written back unchanged, so tools can carry their own annotations through a
run; ``group``, ``topic`` or ``person`` says which records belong together (``group``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from obliviate.errors import ObliviateError

KNOWN_FIELDS = (
    "id",
    "prompt",
    "answer",
    "text",
    "paraphrases",
    "perturbed",
    "paraphrased_answer",
    "probes",
)


@dataclass(frozen=True)
class Probe:
    """A hard in-scope question (multi-hop, cross-lingual, ...) and its expected answer."""

    prompt: str
    answer: str


@dataclass(frozen=True)
class Record:
    """One fact or passage. Exactly one of (prompt and answer) or text is set."""

    id: str
    prompt: str | None = None
    answer: str | None = None
    text: str | None = None
    paraphrases: tuple[str, ...] = ()
    perturbed: tuple[str, ...] = ()
    paraphrased_answer: str | None = None
    probes: dict[str, Probe] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_text(self) -> bool:
        """True for a raw passage (``{"id", "text"}``), False for a question-answer fact."""
        return self.text is not None

    @property
    def person(self) -> str | None:
        """The entity the record is about, when the data says so (the benchmark does)."""
        return self.meta.get("person")

    @property
    def group(self) -> str | None:
        """What the record is about, for attacks that split or chain facts: its ``group``
        field, else its ``topic`` (knowledge a model got in pretraining is a topic, not a
        person), else its ``person``; None when the data says none."""
        for key in ("group", "topic", "person"):
            value = self.meta.get(key)
            if value is not None and str(value).strip():
                return str(value)
        return None

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object in the record format (``meta`` flattened back)."""
        obj: dict[str, Any] = {"id": self.id}
        if self.is_text:
            obj["text"] = self.text
        else:
            obj["prompt"] = self.prompt
            obj["answer"] = self.answer
        if self.paraphrases:
            obj["paraphrases"] = list(self.paraphrases)
        if self.perturbed:
            obj["perturbed"] = list(self.perturbed)
        if self.paraphrased_answer is not None:
            obj["paraphrased_answer"] = self.paraphrased_answer
        if self.probes:
            obj["probes"] = {
                k: {"prompt": p.prompt, "answer": p.answer} for k, p in self.probes.items()
            }
        obj.update(self.meta)
        return obj

    @classmethod
    def from_json(cls, obj: Any, where: str, default_id: str | None = None) -> Record:
        """Validate one decoded JSON object; errors name ``where`` (file:line) and the field.

        ``default_id`` is used when the object has no ``id`` (TOFU's files have none).
        """
        if not isinstance(obj, dict):
            raise ObliviateError(
                f"{where}: expected a JSON object, got {type(obj).__name__}; "
                'each line must look like {"id": ..., "prompt": ..., "answer": ...}'
            )
        rid = obj.get("id", default_id)
        if rid is None or (isinstance(rid, str) and not rid.strip()):
            raise ObliviateError(f"{where}: field 'id' is missing or empty; give each record an id")
        if not isinstance(rid, str | int):
            raise ObliviateError(f"{where}: field 'id' must be a string or integer")

        def text_field(name: str, required: bool) -> str | None:
            value = obj.get(name)
            if value is None:
                if required:
                    raise ObliviateError(
                        f"{where}: field '{name}' is missing; a fact needs 'id', 'prompt' and "
                        "'answer' (a passage needs 'id' and 'text')"
                    )
                return None
            if not isinstance(value, str) or not value.strip():
                raise ObliviateError(f"{where}: field '{name}' must be a non-empty string")
            return value

        def list_field(name: str) -> tuple[str, ...]:
            value = obj.get(name)
            if value is None:
                return ()
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(
                isinstance(v, str) and v.strip() for v in value
            ):
                raise ObliviateError(f"{where}: field '{name}' must be a list of non-empty strings")
            return tuple(value)

        meta = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS}
        if "text" in obj and "prompt" not in obj:
            return cls(id=str(rid), text=text_field("text", True), meta=meta)
        answer = text_field("answer", True)
        probes: dict[str, Probe] = {}
        raw_probes = obj.get("probes") or {}
        if not isinstance(raw_probes, dict):
            raise ObliviateError(f"{where}: field 'probes' must be an object of named probes")
        for name, probe in raw_probes.items():
            if isinstance(probe, str) and probe.strip():
                probes[name] = Probe(prompt=probe, answer=answer)
            elif (
                isinstance(probe, dict)
                and isinstance(probe.get("prompt"), str)
                and isinstance(probe.get("answer"), str)
                and probe["prompt"].strip()
                and probe["answer"].strip()
            ):
                probes[name] = Probe(prompt=probe["prompt"], answer=probe["answer"])
            else:
                raise ObliviateError(
                    f"{where}: field 'probes.{name}' must be a question string or "
                    '{"prompt": ..., "answer": ...}'
                )
        return cls(
            id=str(rid),
            prompt=text_field("prompt", True),
            answer=answer,
            paraphrases=list_field("paraphrases"),
            perturbed=list_field("perturbed"),
            paraphrased_answer=text_field("paraphrased_answer", False),
            probes=probes,
            meta=meta,
        )


def overlap_count(first: list[Record], second: list[Record]) -> int:
    """How many records of ``first`` are also in ``second``: the same question and answer,
    or the same passage (ids aside)."""
    seen = {(r.prompt, r.answer, r.text) for r in second}
    return sum((r.prompt, r.answer, r.text) in seen for r in first)
