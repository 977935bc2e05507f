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

from obliviate.errors import ObliviateError


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
NEIGHBORS = Option(
    "neighbors",
    None,
    "Your own neighbour records: close facts that must stay (instead of the benchmark's).",
)
WORLD = Option(
    "world",
    None,
    "Your own general questions (instead of the benchmark's or the built-in ones); those "
    "that overlap the forget set are dropped.",
)
REAL_AUTHORS = Option(
    "real_authors",
    None,
    "TOFU's Real Authors records (real_authors_perturbed.json); with --world-facts, "
    "model_utility as TOFU computes it.",
)
WORLD_FACTS = Option(
    "world_facts",
    None,
    "TOFU's World Facts records (world_facts_perturbed.json); with --real-authors, "
    "model_utility as TOFU computes it.",
)
HOLDOUT_RANDOM_SPLIT = Option(
    "holdout_random_split",
    False,
    "Your --holdout records and the forget records are a random split of one pool, so "
    "membership inference (mia, privleak) means something; otherwise it is left out.",
)

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
BASE_SECRET = Option(
    "base_secret",
    False,
    "The model unlearning started from (--target) is not public (a private fine-tune): the "
    "checkpoint-diff attack, which reads answers off it, then counts toward the worst case.",
)

# -- behaviour ------------------------------------------------------------------------------
JUDGE_LABEL = Option("judge_label", "1", "The --judge model's label (name or index) for harmful.")
BEHAVIOUR_NEW_TOKENS = Option("max_new_tokens", 64, "Longest response judged, in tokens.")

# -- chat -----------------------------------------------------------------------------------
CHAT_NEW_TOKENS = Option("max_new_tokens", 128, "Longest answer, in tokens.")

# -- unlearn --------------------------------------------------------------------------------
#: The unlearning methods, one module each in ``methods/`` (``methods/__init__.py`` imports
#: these): named here, in a module without torch, so a mistyped ``--method`` is refused in a
#: second, before the registry's modules are imported.
METHOD_NAMES = (
    "ceu", "dpo_idk", "ga", "ga_kl", "ga_mismatch", "grad_diff", "idk", "npo", "pdu", "rmu",
    "satimp", "simnpo", "sku", "task_vector", "undial", "wga",
)  # fmt: skip


def check_method_name(name: str) -> None:
    """Refuse a method that is not in ``METHOD_NAMES``, naming the ones there are."""
    if name not in METHOD_NAMES:
        raise ObliviateError(
            f"unknown method '{name}'; choose one of: {', '.join(METHOD_NAMES)} "
            "(obliviate methods lists them)"
        )


ALLOW_WEAK = Option(
    "allow_weak",
    False,
    "Publish the run even if the forget answers' mean log-prob did not fall by the margin "
    "(or rose); the checks are recorded in results.json either way.",
)
KEEP_ADAPTER = Option(
    "keep_adapter",
    False,
    "With --lora: save the LoRA adapter alone as model/ (a few MB; it names its base model, "
    "which stays as it was) instead of merging it into a full copy of the weights.",
)

# -- demo -----------------------------------------------------------------------------------
DEMO_OUT = Option("out", "runs/demo", "Run directory (replaced by each demo run).")
DEMO_METHOD = Option(
    "method",
    None,
    "Unlearning method (default: the recipe's: grad_diff on the default model; with --quick "
    "its method for knowledge from pretraining, rmu).",
)
DEMO_SEED = Option("seed", 0, "Benchmark and training seed.")
PEOPLE = Option("people", 40, "Fictitious people in the benchmark (about 8 facts each).")

# -- benchmarks -----------------------------------------------------------------------------
BENCH_SEED = Option("seed", 0, "Same seed, byte-identical files.")
BENCH_KIND = Option(
    "kind",
    "facts",
    "facts: fictitious people (TOFU's setting); behaviour: requests for an invented guild's "
    "secret procedures, a behaviour to unlearn (SKU's setting); known: real facts the model "
    "already answers, screened on --model (docs/known.md).",
)
KNOWN_TOPIC = Option(
    "topic",
    None,
    "Known: the topic to forget (default: the first with enough facts the model answers).",
)
KNOWN_SCREEN = Option(
    "screen",
    True,
    "Known: keep only the facts --model answers (--no-screen keeps every candidate and "
    "loads no model).",
)
BEHAVIOUR_ITEMS = Option("size", 24, "Behaviour: restricted items (8 requests each).")
BEHAVIOUR_SETTING = Option(
    "setting",
    "saturated",
    "Behaviour: saturated (the target is taught to comply with every request) or faithful "
    "(SKU's setting: it complies with some only, and --forget gets independently written "
    "responses, harmful_forget.jsonl).",
)
UNSEEN_SHARE = Option(
    "unseen_share", 1 / 3, "Share of the harmful prompts held out as harmful_unseen."
)

# -- tune -----------------------------------------------------------------------------------
TUNE_METHODS = Option("method", "npo,grad_diff", "Methods to search, comma-separated.")
TUNE_TRIALS = Option(
    "trials",
    20,
    "Trials in the study in all: those of an earlier run (--resume) and of other machines "
    "on the same --storage count.",
)
UTILITY_FLOOR = Option(
    "utility_floor",
    0.95,
    "A trial is feasible when its model utility is at least this × the starting model's.",
)
TUNE_MAX_PER_SPLIT = Option(
    "max_per_split", 40, "Evaluate each trial on at most this many records per split."
)
TUNE_STORAGE = Option(
    "storage",
    None,
    "Optuna storage to share with other machines: sqlite:///PATH, a database URL, or a "
    "journal file PATH (default: RUN/study.journal).",
)
TUNE_STUDY = Option(
    "study", None, "Study name in the storage (default: --out's name); give machines the same."
)
TUNE_JOBS = Option("jobs", 1, "Run trials in this many processes at once on this machine.")
TUNE_SEED = Option("seed", 0, "Seed of the sampler (worker k of --jobs adds k).")
TUNE_LR_RANGE = Option(
    "lr_range", None, "Learning rates searched, LOW,HIGH (default: the recipe's ÷ 5 to × 5)."
)
TUNE_EPOCHS_RANGE = Option(
    "epochs_range", None, "Epochs searched, LOW,HIGH (default: half to twice the recipe's)."
)
TUNE_STEPS_RANGE = Option(
    "steps_range", None, "Search optimizer steps, LOW,HIGH, instead of epochs."
)
TUNE_SEARCH = Option(
    "search", None, "Also search: lora (LoRA rank), localize (the fraction of weights trained)."
)
HELD_OUT_SHARE = Option(
    "held_out",
    0.5,
    "Your own data: the share of --forget tuned on (whole people or topics where records "
    "name them).",
)

# -- report ---------------------------------------------------------------------------------
REPORT_OUT = Option("out", "report.html", "HTML file to write (the Markdown goes beside it).")

# -- safety ---------------------------------------------------------------------------------
TRUST_REMOTE_CODE = Option(
    "trust_remote_code",
    False,
    "Let transformers run the Python files of a model folder (auto_map in its config). Off: "
    "such a model is refused, and nothing asks on standard input.",
)

# -- resources ------------------------------------------------------------------------------
THREADS = Option(
    "threads",
    None,
    "CPU threads torch computes with (default: torch's choice, one per core); tune --jobs J "
    "gives each job N ÷ J.",
)
