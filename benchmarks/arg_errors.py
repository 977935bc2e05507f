"""How long a mistyped option takes to be refused: every argument error in under a second.

    .venv/bin/python benchmarks/arg_errors.py

Each case runs ``obliviate`` in a fresh process (imports included, as a user meets it)
and prints its wall time and the one-line error.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "missing --oracle folder": ["eval", "--model", "tiny", "--oracle", "runs/nooracle"],
    "missing --forget file": ["eval", "--model", "tiny", "--forget", "nothere.jsonl"],
    "unknown --precision": ["audit", "--model", "tiny", "--precision", "fp8"],
    "Hub id not in the cache": ["unlearn", "--model", "org/not-cached", "--forget", "f.jsonl"],
    "unknown --method": ["unlearn", "--model", "tiny", "--forget", "f.jsonl", "--method", "x"],
    "missing --data": ["finetune", "--data", "nope.jsonl"],
}


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        Path(work, "f.jsonl").write_text('{"prompt": "Q?", "answer": "A"}\n')
        print(f"{'case':<26} {'seconds':>7}  error")
        for name, args in CASES.items():
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "obliviate", *args, "--out", "run"],
                cwd=work,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
            line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "(none)"
            print(f"{name:<26} {seconds:7.2f}  [{done.returncode}] {line[:90]}")


if __name__ == "__main__":
    main()
