"""Freed memory stays in the process: a training step's large blocks, freed at its end,
serve the next step without touching new pages (the page faults that cost a fine-tuning
step of the default model 0.3 s of kernel time)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from obliviate.memory import keep_freed_memory

#: Steps that each allocate, fill and free a few blocks of 4 to 64 MB among small tensors,
#: as a training step does with gradients and autocast's weight copies; prints the page
#: faults per step after two warm-up steps.
STEPS = """
import resource, torch
from obliviate.memory import keep_freed_memory
keep_freed_memory()
sizes = [2**20, 4 * 2**20, 16 * 2**20, 8 * 2**20]
def step():
    blocks = [torch.empty(n) for n in sizes]
    for block in blocks:
        block.fill_(1.0)
    small = [torch.empty(10) for _ in range(5)]
    del blocks
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_step(keep: bool) -> float:
    env = os.environ | {"OBLIVIATE_KEEP_FREED_MEMORY": "1" if keep else "0"}
    done = subprocess.run(
        [sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_blocks_serve_the_next_step_without_new_pages() -> None:
    fresh_pages = (1 + 4 + 16 + 8) * 2**20 * 4 // 4096  # every block on new pages
    given_back = _faults_per_step(keep=False)
    kept = _faults_per_step(keep=True)
    assert given_back > 0.8 * fresh_pages  # glibc unmaps each freed block
    assert kept < 0.3 * given_back


def test_it_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBLIVIATE_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
