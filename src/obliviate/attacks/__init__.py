"""The audit's attacks: one module each, all in one registry.

Adding an attack: write ``attacks/<name>.py`` with a ``@register_attack`` function that
returns its variants' measurements, then add its module name to the import below.
"""

from obliviate.attacks import (  # noqa: F401  (registration side effect)
    clues,
    diff,
    formats,
    in_context,
    jailbreak,
    probe,
    probes,
    quantize,
    relearn,
    tamper,
)
from obliviate.attacks.audit import resolve_attacks, run_audit
from obliviate.attacks.base import ATTACKS, AuditContext, register_attack

__all__ = ["ATTACKS", "AuditContext", "register_attack", "resolve_attacks", "run_audit"]
