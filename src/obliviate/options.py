"""Every command option that is not a training setting, defined once.

An option's name is the workflow's keyword argument and the ``--config`` key; its default
is the workflow signature's default (``split: str = SPLIT.default``) and the command
line shows it in ``--help``. Training settings are ``TrainConfig``'s fields
(``obliviate.train.config``), defined the same way. A light module: the command line
imports it before torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One command-line option: its name (``max_per_split`` → ``--max-per-split``), default
    and one line of help (the default is added where the help is shown)."""

    name: str
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def help_text(self) -> str:
        """The help with its default, as ``--help`` shows it."""
        if self.default is None or isinstance(self.default, bool):
            return self.help
        shown = f"{self.default:g}" if isinstance(self.default, float) else self.default
        return f"{self.help} [default: {shown}]"


# -- what to run on -------------------------------------------------------------------------
BASE_MODEL = Option(
    "model",
    "smollm2",
    "Model spec: smollm2 (default model), tiny (test model), a HF model or run directory, "
    "a .gguf file, or a hub id already in the local cache.",
)
SPLIT = Option("split", "forget10", "Forget split of the benchmark.")
MAX_PER_SPLIT = Option("max_per_split", None, "Evaluate at most this many records per split.")

# -- how models are asked -------------------------------------------------------------------
EVAL_PRECISION = Option(
    "precision",
    "fp32",
    "Autocast of the questions: fp32 (the same figures on every machine), bf16, fp16 or "
    "auto (faster).",
)
VERBMEM_PROMPT_TOKENS = Option(
    "verbmem_prompt_tokens", 32, "Text (MUSE): first tokens of each forget passage given as prompt."
)
VERBMEM_NEW_TOKENS = Option(
    "verbmem_new_tokens", 64, "Text (MUSE): tokens generated and compared with the passage."
)

# -- audit ----------------------------------------------------------------------------------
ATTACKS = Option("attacks", "all", "all or a comma-separated list of attacks.")
BUDGET = Option(
    "budget",
    "small",
    "small or full: step counts and sample sizes of attacks; full also attacks the target "
    "(small only asks it plainly, for the recoveries).",
)
RELEARN_STEPS = Option("relearn_steps", 16, "Fine-tuning steps of the relearn attack.")
RELEARN_LR = Option("relearn_lr", 2e-5, "Learning rate of the relearn attack.")
RELEARN_PRECISION = Option(
    "relearn_precision",
    "auto",
    "Autocast of the attacker's fine-tunes (relearn, tamper): auto (bf16 where native, as "
    "an attacker trains) or fp32 (the same figures on every machine).",
)
AUDIT_SEED = Option("seed", 0, "Random seed of the attacks (samples, fine-tunes).")

# -- behaviour ------------------------------------------------------------------------------
JUDGE_LABEL = Option("judge_label", "1", "The --judge model's label (name or index) for harmful.")
BEHAVIOUR_NEW_TOKENS = Option("max_new_tokens", 64, "Longest response judged, in tokens.")

# -- chat -----------------------------------------------------------------------------------
CHAT_NEW_TOKENS = Option("max_new_tokens", 128, "Longest answer, in tokens.")

# -- demo -----------------------------------------------------------------------------------
DEMO_OUT = Option("out", "runs/demo", "Run directory (replaced by each demo run).")
DEMO_METHOD = Option("method", "grad_diff", "Unlearning method.")
DEMO_SEED = Option("seed", 0, "Benchmark and training seed.")
PEOPLE = Option("people", 40, "Fictitious people in the benchmark (about 8 facts each).")

# -- benchmarks -----------------------------------------------------------------------------
BENCH_SEED = Option("seed", 0, "Same seed, byte-identical files.")
BENCH_KIND = Option(
    "kind",
    "facts",
    "facts: fictitious people (TOFU's setting); behaviour: requests for an invented guild's "
    "secret procedures, a behaviour to unlearn (SKU's setting).",
)
BEHAVIOUR_ITEMS = Option("size", 24, "Behaviour: restricted items (8 requests each).")
UNSEEN_SHARE = Option(
    "unseen_share", 1 / 3, "Share of the harmful prompts held out as harmful_unseen."
)

# -- report ---------------------------------------------------------------------------------
REPORT_OUT = Option("out", "report.html", "HTML file to write (the Markdown goes beside it).")
