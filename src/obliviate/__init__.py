"""obliviate: make a language model forget, and prove that it did.

The Python API (``obliviate.api``, see its docstring) is reachable from here too::

    import obliviate

    run = obliviate.unlearn(model, forget_records, retain_records, "npo", "runs/unlearned",
                            tokenizer=tokenizer)       # a loaded model and lists of dicts
    results = obliviate.evaluate(run.out, "runs/eval", forget=forget_records, target=model,
                                 tokenizer=tokenizer)
    print(results.verdict["line"])

``import obliviate`` stays light (no torch): the API's names are looked up in
``obliviate.api`` on first use (PEP 562), the one import of this module from above.
"""

from obliviate.errors import ObliviateError

__version__ = "0.1.0"

#: ``obliviate.api.__all__``, named here so that ``dir()`` and ``from obliviate import *``
#: see them without importing torch (a test keeps the two lists equal).
_API = (
    "Results", "RunResult", "TrainConfig", "audit", "bench_passages", "bench_splits",
    "build_guard", "demo", "encode_records", "evaluate", "evaluate_behaviour",
    "evaluation_passages", "evaluation_splits", "finetune", "finetune_cache_key",
    "make_known_bench", "processes", "quick_demo", "resolve_data", "retain_split_for",
    "scenario_files", "self_replay_records", "sequence", "set_threads", "tune", "unlearn",
)  # fmt: skip
__all__ = ["ObliviateError", "__version__", *_API]


def __getattr__(name: str) -> object:
    """``obliviate.unlearn`` and the rest of the API: ``obliviate.api``'s, loaded on use."""
    if name not in _API:
        raise AttributeError(f"module 'obliviate' has no attribute {name!r}")
    from obliviate import api

    return getattr(api, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
