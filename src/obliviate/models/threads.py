"""How many CPU threads torch computes with (``--threads``), like precision a property of how
a model runs, set in one place for every command and for the Python API.

Left unset, torch chooses (one thread per physical core). A smaller number leaves cores to
other work on the machine; ``tune --jobs J`` gives each of its J processes a share of it.
"""

from __future__ import annotations

from contextlib import suppress

from obliviate.errors import ObliviateError


def check_threads(threads: int | None, option: str = "--threads") -> None:
    """The one-line error for a thread count below one (checked before torch loads)."""
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise ObliviateError(f"{option} must be at least 1, not {threads}")


def set_threads(threads: int | None) -> None:
    """Make torch compute with ``threads`` CPU threads in this process (None: torch's own
    choice, unchanged). The Python API's way to ``--threads``: call it before the first
    command, ``api.set_threads(4)``.

    Sets the intra-op threads (what matrix products use) and, while torch still allows it
    (before its first inter-op parallel work, so once per process), the inter-op ones."""
    check_threads(threads)
    if threads is None:
        return
    import torch  # here, not at the top: the command line checks the value before torch loads

    torch.set_num_threads(threads)
    # Refused once set, or once inter-op work started: torch then keeps its pool.
    with suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
