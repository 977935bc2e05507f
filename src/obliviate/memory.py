"""Keep freed memory in the process instead of handing it back to the kernel.

glibc's malloc serves large blocks with ``mmap`` and unmaps them when they are freed, and
trims the top of its heap as it shrinks. A training step of the default model frees and
allocates again about 700 MB — autocast's copies of the weights, the gradients, the tied
embedding's 113 MB gradient, the logits — so every step touches that memory as new pages:
measured on 2 CPU cores, 150–170 thousand page faults and 0.3 s of kernel time per
fine-tuning step. With freed memory kept for the next allocation there were none: a bf16
step of the tamper attack's fine-tune took 0.60 s instead of 0.75 s, an fp32 one 1.19 s
instead of 1.40 s, and generation about 10 % less, for about 15 % more peak memory
(freed blocks stay in the heap, which aligned allocations fragment somewhat). This is
what PyTorch's performance guide gets by preloading jemalloc or tcmalloc; glibc can do it
itself, asked through ``mallopt``.

``load_model`` asks for it, so every command, API call and benchmark that loads a model
runs on it; ``OBLIVIATE_KEEP_FREED_MEMORY=0`` turns it off (for a long-lived program
that must give memory back).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's ``mallopt`` parameters (malloc.h): the heap size above which freed memory at
#: its top goes back to the kernel, and how many blocks may be served by ``mmap``.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

#: The largest trim threshold ``mallopt`` takes (an ``int``): the heap gives memory back
#: only when more than 2 GB at its top are free.
_LARGEST = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every block from its heap and never give freed memory
    back (unless 2 GB at the heap's top are free), so that the next step's allocations reuse
    it without page faults.

    Returns whether it applied: not on other C libraries (macOS, Windows, musl) or with
    ``OBLIVIATE_KEEP_FREED_MEMORY=0``. Safe to call more than once.
    """
    if os.environ.get("OBLIVIATE_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _LARGEST))
