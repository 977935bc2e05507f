"""MUSE's sequential criterion: four deletion requests in a row (the text scenario).

    .venv/bin/python benchmarks/text_sequence.py [--model smollm2] [--method npo] \
        [--requests forget01,forget05,forget10,forget25] [--work runs/bench-text-sequence] \
        [--demo runs/bench-text/demo]

The target, benchmark (with forget25) and unlearning schedule are those of
``text_scale.py``. Runs ``obliviate sequence --text`` with them: request k unlearns the
passages of the people of split k whom no earlier request removed, from the model the
request before left; after each, the model is evaluated against the target's fine-tune
redone without everyone removed so far (cached) and the target, at most 100 records per
split. Pass the best method of ``benchmarks/text.py``. Prints the sequence's tables
(``WORK/sequence-METHOD/summary.md``); its plot is ``sequence.png`` beside them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for text_scale, beside this file
from text_scale import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--method", default="npo")
    parser.add_argument("--requests", default="forget01,forget05,forget10,forget25")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-text-sequence"))
    parser.add_argument("--demo", type=Path, help="a demo --text run to reuse (its target)")
    parser.add_argument("--max-per-split", type=int, default=100)
    parser.add_argument(
        "--precision", default="auto", help="evaluation precision (auto: bf16 where native)"
    )
    args = parser.parse_args()
    target, bench, config = prepare(args.model, args.work, args.demo)
    out = args.work / f"sequence-{args.method}"
    command = [
        sys.executable, "-m", "obliviate", "sequence", "--model", str(target),
        "--bench", str(bench), "--method", args.method, "--requests", args.requests, "--text",
        "--config", str(config), "--max-per-split", str(args.max_per_split),
        "--eval-precision", args.precision, "--out", str(out), "--overwrite", "--allow-weak",
    ]  # fmt: skip
    if subprocess.run(command).returncode != 0:
        sys.exit("the sequence failed (see above)")
    print((out / "summary.md").read_text())
    print(f"plot: {out / 'sequence.png'}")


if __name__ == "__main__":
    main()
