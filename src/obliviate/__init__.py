"""obliviate: make a language model forget, and prove that it did.

The Python API mirrors the command line::

    from obliviate import api
    api.finetune("smollm2", "bench/full.jsonl", "runs/target")
    api.unlearn("runs/target", "bench/forget10.jsonl", "bench/retain90.jsonl", "grad_diff",
                "runs/unlearned")
"""

from obliviate.errors import ObliviateError

__version__ = "0.1.0"
__all__ = ["ObliviateError", "__version__"]
