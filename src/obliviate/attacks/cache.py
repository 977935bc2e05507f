"""The oracle's and the target's attacked figures, kept by content hash.

Neither depends on the unlearned model under audit: the oracle is attacked, and the
target calibrated, the same way whichever method made the model. Auditing several methods
against one oracle therefore pays for those two once; later audits read them back from
``$OBLIVIATE_CACHE/attacks``. The key names everything an attack's figures depend on:
the attack, the role, the content of the attacked model and of the target (attacks compare
weights with it), every record and setting of the audit context, the whole obliviate
source (attacks fine-tune, generate and score through the rest of the package) and the
library versions.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from obliviate.attacks.base import AttackOutput, AuditContext
from obliviate.cache import code_fingerprint, content_key, load_entry, store_entry
from obliviate.data.records import Record
from obliviate.models.loader import model_fingerprint
from obliviate.models.precision import resolve_precision
from obliviate.rundir import package_versions

#: The folder of the cache that holds attack outputs.
KIND = "attacks"

#: The roles whose figures do not depend on the model under audit.
CACHED_ROLES: tuple[str, ...] = ("oracle", "target")

#: Context fields that do not decide the oracle's and the target's figures: the guard's
#: utility questions (only the guarded model is asked them) and the figures attacks keep
#: for one another during an audit.
_UNUSED = frozenset({"utility", "shared"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class AttackCache:
    """Reads and stores the outputs of the attacks on the roles of ``CACHED_ROLES``.

    The models are hashed once, when the cache is opened (a model's files take a second
    or two to hash); a model known only by name (a hub id, whose content cannot be hashed)
    is never cached, nor is anything attacked when the target is such a model.
    """

    def __init__(self, root: Path, models: dict[str, str], ctx: AuditContext):
        self.root = root
        specs = {role: models[role] for role in CACHED_ROLES if role in models}
        if ctx.target:
            specs.setdefault("target", ctx.target)
        prints = {role: model_fingerprint(spec) for role, spec in specs.items()}
        hashable = {role: p for role, p in prints.items() if not p.startswith("hub:")}
        target = prints.get("target")
        self._models = hashable if target is None or "target" in hashable else {}
        settings = {
            f.name: _jsonable(getattr(ctx, f.name)) for f in fields(ctx) if f.name not in _UNUSED
        }
        self._shared = {
            "context": settings
            | {
                "target": target,
                "precision": resolve_precision(ctx.precision),
                "relearn_precision": resolve_precision(ctx.relearn_precision),
            },
            "code": code_fingerprint((".",)),
            "versions": package_versions(),
        }

    def _key(self, attack: str, role: str) -> str | None:
        model = self._models.get(role)
        if model is None:
            return None
        return content_key({"attack": attack, "role": role, "model": model, **self._shared})

    def load(self, attack: str, role: str) -> AttackOutput | None:
        """The stored output of ``attack`` on ``role``, or None (not cacheable, not stored
        or unreadable)."""
        key = self._key(attack, role)
        return load_entry(self.root, KIND, key, AttackOutput) if key else None

    def store(self, attack: str, role: str, output: AttackOutput) -> None:
        """Keep ``output`` for later audits (nothing for a role that is not cacheable)."""
        key = self._key(attack, role)
        if key is not None:
            store_entry(self.root, KIND, key, output)
