"""Reliability: nothing lost, nothing executed, nothing silently wrong (issue 24).

Each test reproduces one way a run went wrong (two runs on one --out, a model folder's
code, a poisoned cache file, hard-linked runs, a resume of another run, a kill at the
wrong moment, a full disk, bad Unicode, unbounded input, an unchecked config) on the tiny
model, in seconds.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import cli_output

from obliviate import api
from obliviate.cache import load_entry, store_entry
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods import FineTune
from obliviate.models.loader import load_model, save_model
from obliviate.rundir import RunDir, disk_full_error
from obliviate.train import loop
from obliviate.train.checkpoints import latest_checkpoint
from obliviate.train.config import TrainConfig
from obliviate.train.loop import train

QUICK = TrainConfig(max_steps=2, lr=1e-3, batch_size=4, precision="fp32")


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def facts(path: Path, n: int, prefix: str = "f", answer: str = "blue") -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"{prefix}{i}", "prompt": f"What is {prefix} {i}?", "answer": answer})
            + "\n"
            for i in range(n)
        )
    )
    return path


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- 1. a run directory is owned by one run -------------------------------------------------


def test_a_second_run_on_the_same_out_fails_at_once(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    staging = tmp_path / ".run.partial"
    staging.mkdir()
    (staging / "theirs.txt").write_text("the other run's work")
    # Another process holds --out for its run (it started first).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            f"lock = FileLock({str(tmp_path / '.run.lock')!r}); lock.acquire(); "
            "print('held', flush=True); "
            "time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        data = facts(tmp_path / "d.jsonl", 4)
        code, _, err = cli_output(
            ["finetune", "--model", "tiny", "--data", str(data), "--out", str(out), "--no-cache"],
            monkeypatch,
            capsys,
        )
    finally:
        holder.kill()
        holder.wait()
    one_line_error(code, err, "another run is writing", str(out))
    assert (staging / "theirs.txt").read_text() == "the other run's work"  # its staging kept
    assert not out.exists()


def test_a_folder_made_at_out_during_the_run_is_kept_and_the_run_resumable(
    tmp_path: Path, monkeypatch
) -> None:
    from obliviate.workflows import training

    out = tmp_path / "run"
    real_save = training.save_model

    def user_makes_out(loaded, where, *base):
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        return real_save(loaded, where, *base)

    monkeypatch.setattr(training, "save_model", user_makes_out)
    data = facts(tmp_path / "d.jsonl", 4)
    with pytest.raises(ObliviateError, match="appeared while the run worked"):
        api.finetune("tiny", data, out, QUICK, overwrite=True, use_cache=False)
    assert (out / "notes.txt").read_text() == "mine"  # not deleted, even with --overwrite
    assert (tmp_path / ".run.partial" / "manifest.json").is_file()  # the finished run kept
    monkeypatch.setattr(training, "save_model", real_save)

    (out / "notes.txt").rename(tmp_path / "notes.txt")
    out.rmdir()
    result = api.finetune("tiny", data, out, QUICK, resume=True, use_cache=False)
    assert (result.out / "model" / "config.json").is_file()
    assert (result.out / "manifest.json").is_file()
    assert not (tmp_path / ".run.partial").exists()


def test_overwrite_replaces_only_an_earlier_run(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ObliviateError, match="no run directory"):
        RunDir(mine, overwrite=True)
    assert (mine / "thesis.tex").is_file()


def test_a_run_started_from_a_large_process_records_its_own_peak_memory() -> None:
    """A 300 MB script that launches ``obliviate unlearn`` must not lend the run its peak:
    Linux's ``ru_maxrss`` starts an exec'd process at its parent's (benchmarks/methods.py
    once printed the parent's 12.5 GB for every method)."""
    report = "from obliviate.rundir import peak_rss_mb; print(peak_rss_mb())"
    parent = textwrap.dedent(f"""
        import subprocess, sys
        held = bytearray(300 * 2**20); held[::4096] = b"x" * len(held[::4096])
        subprocess.run([sys.executable, "-c", {report!r}], check=True)
    """)
    result = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 150


# -- 2. no code execution ---------------------------------------------------------------------


def test_a_model_folder_with_code_runs_nothing_even_with_y_on_stdin(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    load_model("tiny").tokenizer.save_pretrained(folder)
    marker = tmp_path / "MARKER"
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evilmodel",
                "architectures": ["EvilModel"],
                "auto_map": {
                    "AutoConfig": "evil.EvilConfig",
                    "AutoModelForCausalLM": "evil.EvilModel",
                },
            }
        )
    )
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\ny\nhello\n"))
    code, _, err = cli_output(["chat", "--model", str(folder)], monkeypatch, capsys)
    one_line_error(code, err, "--trust-remote-code")
    assert not marker.exists()


def test_trust_remote_code_reaches_the_workflows_a_workflow_runs() -> None:
    from obliviate.models.loader import remote_code_allowed, remote_code_option

    @remote_code_option
    def inner(trust_remote_code: bool = False) -> bool:
        return remote_code_allowed()

    @remote_code_option
    def outer(trust_remote_code: bool = False) -> bool:
        return inner()

    assert outer(trust_remote_code=True)  # the nested workflow inherits it
    assert not outer() and not inner()
    assert not remote_code_allowed()  # not left on after the call


def test_pickled_weights_that_are_not_tensors_are_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    loaded = load_model("tiny")
    save_model(loaded, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ObliviateError) as error:
        load_model(str(folder))
    assert "\n" not in str(error.value)
    assert not marker.exists()


def test_a_poisoned_cache_file_is_never_unpickled(tmp_path: Path) -> None:
    from obliviate.attacks.base import AttackOutput, Measurement, Score, VariantResult
    from obliviate.evaluation.suite import ModelEvaluation

    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    key = "ab" * 32
    for kind in ("evaluations", "attacks"):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / f"{key}.pkl").write_bytes(pickle.dumps(Payload()))
    assert load_entry(tmp_path, "evaluations", key, ModelEvaluation) is None
    assert load_entry(tmp_path, "attacks", key, AttackOutput) is None
    (tmp_path / "attacks" / f"{key}.json").write_text('{"plain": {"forget": 3}}')
    assert load_entry(tmp_path, "attacks", key, AttackOutput) is None  # not the right shape
    assert not marker.exists()

    # A round trip gives the same figures back, to the last bit.
    output = {
        "plain": VariantResult(
            forget=Measurement(Score(0.1 + 0.2, 1 / 3, 7), None, {"dropped_turns": 2}),
            control=Measurement(Score(0.5, 2e-310, 3), Score(0.25, float("nan"), 3)),
        )
    }
    store_entry(tmp_path, "attacks", key, output)
    back = load_entry(tmp_path, "attacks", key, AttackOutput)
    assert back["plain"].forget == output["plain"].forget
    assert back["plain"].control.before == output["plain"].control.before
    assert str(back["plain"].control.after) == str(output["plain"].control.after)  # nan


# -- 3. no corruption -------------------------------------------------------------------------


def test_finetune_runs_are_copies_of_the_cache_not_links(tmp_path: Path) -> None:
    data = facts(tmp_path / "d.jsonl", 4)
    first = api.finetune("tiny", data, tmp_path / "one", QUICK)
    second = api.finetune("tiny", data, tmp_path / "two", QUICK)
    assert not first.cached and second.cached
    cached = [
        entry
        for entry in (Path(os.environ["OBLIVIATE_CACHE"]) / "finetunes").iterdir()
        if (entry / "manifest.json").is_file()
        and json.loads((entry / "manifest.json").read_text())["inputs"]["primary"]["path"]
        == str(data)
    ]
    assert len(cached) == 1
    config = "model/config.json"
    original = (cached[0] / config).read_text()
    with open(first.out / config, "a") as edited:  # edits in place, as an editor may
        edited.write("\n")
    assert (cached[0] / config).read_text() == original
    assert (second.out / config).read_text() == original
    assert (second.out / config).stat().st_nlink == 1


# -- 4. silently wrong ------------------------------------------------------------------------


def test_resume_with_another_method_or_lr_is_refused(tmp_path: Path, monkeypatch) -> None:
    from obliviate.workflows import training

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    forget = facts(tmp_path / "forget.jsonl", 4)
    retain = facts(tmp_path / "retain.jsonl", 4, prefix="r")
    out = tmp_path / "run"
    monkeypatch.setattr(training, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        api.unlearn("tiny", forget, retain, "grad_diff", out, QUICK)
    with pytest.raises(ObliviateError, match="method is 'ga' here but was 'grad_diff'"):
        api.unlearn("tiny", forget, retain, "ga", out, QUICK, resume=True)
    faster = TrainConfig(max_steps=2, lr=1e-2, batch_size=4, precision="fp32")
    with pytest.raises(ObliviateError, match=r"--lr is 0\.01 here but was 0\.001"):
        api.unlearn("tiny", forget, retain, "grad_diff", out, faster, resume=True)
    other = facts(tmp_path / "other.jsonl", 4, answer="red")
    with pytest.raises(ObliviateError, match="primary data's content"):
        api.unlearn("tiny", other, retain, "grad_diff", out, QUICK, resume=True)
    # The same command passes the check (and finds no checkpoint: killed before the first).
    monkeypatch.undo()
    with pytest.raises(ObliviateError, match="holds no checkpoint"):
        api.unlearn("tiny", forget, retain, "grad_diff", out, QUICK, resume=True)


def test_ctrl_c_right_after_the_optimizer_step_resumes_to_the_same_weights(
    bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    loaded = load_model("tiny")
    examples = api.encode_records(loaded, load_records(bench_dir / "forget10.jsonl"))
    config = TrainConfig(max_steps=8, lr=1e-3, batch_size=4, checkpoint_every=3, precision="fp32")
    pad = loaded.tokenizer.pad_token_id
    straight = load_model("tiny")
    train(straight.model, FineTune(), examples, None, config, pad, tmp_path / "straight")

    scheduler_class = type(loop.get_scheduler("linear", torch.optim.SGD([torch.zeros(1)]), 0, 8))
    real_step = scheduler_class.step

    def step_then_ctrl_c(self, *args, **kwargs) -> None:
        real_step(self, *args, **kwargs)
        if self.last_epoch == 5:  # the weights are step 5's; the loop's counter is not yet
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(scheduler_class, "step", step_then_ctrl_c)
    work = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(loaded.model, FineTune(), examples, None, config, pad, work)
    monkeypatch.undo()
    assert latest_checkpoint(work).name == "step-000005"
    resumed = load_model("tiny")
    summary = train(resumed.model, FineTune(), examples, None, config, pad, work, resume=True)
    assert summary.resumed_from_step == 5
    expected = _weights(straight.model)
    for name, value in _weights(resumed.model).items():
        assert torch.allclose(value, expected[name], atol=1e-6), name


def test_own_oracle_and_overlapping_sets_are_warned_about(bench_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    save_model(load_model("tiny"), model)
    forget = load_records(bench_dir / "forget10.jsonl")[:4]
    retain = load_records(bench_dir / "retain90.jsonl")[:4] + forget[:2]
    holdout = load_records(bench_dir / "holdout.jsonl")[:4]
    paths = {}
    for name, records in (("forget", forget), ("retain", retain), ("holdout", holdout)):
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    result = api.evaluate(str(model), tmp_path / "eval", oracle=str(model), **paths)
    warnings = result["warnings"]
    assert any("oracle is the model itself" in w for w in warnings), warnings
    assert any(w.startswith("2 of the 4 forget records") for w in warnings), warnings
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["warnings"] == warnings

    run = api.unlearn(
        "tiny", paths["forget"], paths["retain"], "grad_diff", tmp_path / "u", QUICK,
        allow_weak=True,
    )  # fmt: skip
    assert any(w.startswith("2 of the 4 forget records") for w in run.results["warnings"])


# -- 5. resume after a crash --------------------------------------------------------------------


def test_a_kill_while_publishing_resumes_by_publishing(tmp_path: Path, monkeypatch) -> None:
    data = facts(tmp_path / "d.jsonl", 4)
    out = tmp_path / "run"
    real_publish = RunDir.publish

    def killed_while_deleting_checkpoints(self):
        (self.staging / "checkpoints" / "step-000005").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "publish", killed_while_deleting_checkpoints)
    with pytest.raises(KeyboardInterrupt):
        api.finetune("tiny", data, out, QUICK, use_cache=False)
    monkeypatch.setattr(RunDir, "publish", real_publish)
    assert latest_checkpoint(tmp_path / ".run.partial") is None  # the empty one is no checkpoint
    result = api.finetune("tiny", data, out, QUICK, resume=True, use_cache=False)
    assert (result.out / "model" / "model.safetensors").is_file()
    assert not (result.out / "checkpoints").exists()
    assert result.results["method"] == "finetune"


def test_a_truncated_checkpoint_is_a_one_line_error(bench_dir: Path, tmp_path: Path) -> None:
    loaded = load_model("tiny")
    examples = api.encode_records(loaded, load_records(bench_dir / "forget01.jsonl"))
    config = TrainConfig(max_steps=6, lr=1e-3, batch_size=2, checkpoint_every=2, precision="fp32")
    pad = loaded.tokenizer.pad_token_id

    def interrupt(step: int, total: int, logs: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt

    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        train(loaded.model, FineTune(), examples, None, config, pad, work, on_step=interrupt)
    state = latest_checkpoint(work) / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    assert latest_checkpoint(work) is None  # cut short: not a complete checkpoint
    with pytest.raises(ObliviateError, match="incomplete or damaged"):
        train(load_model("tiny").model, FineTune(), examples, None, config, pad, work, resume=True)


# -- 6. tracebacks and unbounded inputs -------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_path(tmp_path: Path, monkeypatch, capsys) -> None:
    def full(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:664] . unexpected pos 1502720 vs 1502672"
        )

    monkeypatch.setattr(torch, "save", full)
    config = tmp_path / "c.yaml"
    config.write_text("checkpoint_every: 1\nmax_steps: 3\n")
    data = facts(tmp_path / "d.jsonl", 4)
    out = tmp_path / "run"
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(data), "--out", str(out), "--no-cache",
         "--config", str(config)],
        monkeypatch,
        capsys,
    )  # fmt: skip
    one_line_error(code, err, "is full", str(tmp_path / ".run.partial"))
    error = disk_full_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x")
    assert error is not None and str(tmp_path / "x") in str(error)


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b'{"id": "b", "prompt": "Q \\ud800?", "answer": "A"}\n', "lone surrogate"),
        (b'{"id": "b", "prompt": "Q \xff?", "answer": "A"}\n', "0xff"),
    ],
)
def test_bad_unicode_is_one_line_naming_file_and_line(
    line: bytes, what: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b'{"id": "a", "prompt": "Q?", "answer": "A"}\n' + line)
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(data), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    one_line_error(code, err, f"{data}:2", what)


def test_chat_ends_cleanly_without_stdin_and_refuses_bad_bytes(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    code, _, _ = cli_output(["chat", "--model", "tiny"], monkeypatch, capsys)
    assert code == 0
    bad = io.TextIOWrapper(io.BytesIO(b"\xff\xfe hello\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", bad)
    code, _, err = cli_output(["chat", "--model", "tiny"], monkeypatch, capsys)
    one_line_error(code, err.replace("chatting with tiny\n", ""), "not UTF-8")


def test_chat_input_is_capped(monkeypatch, capsys) -> None:
    from obliviate.workflows import chat

    lengths = []
    real_respond = chat.ChatSession.respond

    def respond(self, message):
        lengths.append(len(message))
        return real_respond(self, message)

    monkeypatch.setattr(chat.ChatSession, "respond", respond)
    monkeypatch.setattr(sys, "stdin", io.StringIO("word " * 200_000 + "\nhi\n"))
    code, _, _ = cli_output(
        ["chat", "--model", "tiny", "--max-new-tokens", "2"], monkeypatch, capsys
    )
    assert code == 0
    assert lengths[0] <= chat.MAX_MESSAGE_CHARS and lengths[1] == 2


def test_long_records_are_cut_and_large_forget_sets_sampled(tmp_path: Path, monkeypatch) -> None:
    from obliviate.workflows import training

    monkeypatch.setattr(training, "FORGET_FIGURES_SAMPLE", 8)
    data = facts(tmp_path / "d.jsonl", 11)
    with data.open("a") as extra:
        extra.write(json.dumps({"id": "long", "prompt": "Tell all?", "answer": "la " * 5000}))
    result = api.finetune("tiny", data, tmp_path / "run", QUICK, use_cache=False)
    assert result.results["records_cut_to_context"]["primary"] == 1
    assert result.results["primary_measured_on"] | {"limit": None} == {
        "limit": None, "facts": 8, "facts_total": 12, "passages": 0, "passages_total": 0,
    }  # fmt: skip
    assert any("longer than the model reads" in w for w in result.results["warnings"])


def test_ctrl_c_prints_the_resume_hint(tmp_path: Path, monkeypatch, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "finetune", interrupted)
    data = facts(tmp_path / "d.jsonl", 4)
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(data), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert code == 130
    assert "--resume" in err


# -- 7. config validated --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "fragments"),
    [
        ("lrr: 1e-4\n", ("unknown option 'lrr'", "did you mean 'lr'")),
        ("lora: 'no'\n", ("lora must be true or false",)),
        ("checkpoint_every: -1\n", ("checkpoint_every must be >= 0",)),
        ("max_steps: 2.5\n", ("max_steps must be a whole number",)),
    ],
)
def test_a_config_file_is_checked_against_the_options(
    yaml_text: str, fragments: tuple[str, ...], tmp_path: Path, monkeypatch, capsys
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    data = facts(tmp_path / "d.jsonl", 4)
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(data), "--out", str(tmp_path / "r"),
         "--config", str(config)],
        monkeypatch,
        capsys,
    )  # fmt: skip
    one_line_error(code, err, *fragments)


def test_config_numbers_are_typed_and_a_runs_config_is_accepted_back(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    given = []
    monkeypatch.setattr(api, "finetune", lambda *args, **kwargs: given.append(args) or _done())
    config = tmp_path / "c.yaml"
    config.write_text("lr: 1e-4\nepochs: '3'\nlora: yes\n")
    data = facts(tmp_path / "d.jsonl", 4)
    base = ["finetune", "--model", "tiny", "--data", str(data), "--out", str(tmp_path / "r")]
    code, _, _ = cli_output([*base, "--config", str(config)], monkeypatch, capsys)
    assert code == 0
    settings = given[-1][3]
    assert (settings.lr, settings.epochs, settings.lora) == (1e-4, 3.0, True)

    run_config = tmp_path / "config.yaml"  # as a run writes it
    run_config.write_text(
        textwrap.dedent(
            f"""\
            command: finetune
            model: tiny
            method: finetune
            method_params: {{}}
            data:
              primary: {data}
              chunk_tokens: 64
              sha256:
                primary: 0123
            train:
              epochs: 2
              max_steps: 7
              lr: 0.0003
              seed: 5
            """
        )
    )
    code, _, _ = cli_output(
        ["finetune", "--config", str(run_config), "--out", str(tmp_path / "r2")],
        monkeypatch,
        capsys,
    )
    assert code == 0
    model, data_given, _, settings = given[-1]
    assert (model, Path(data_given)) == ("tiny", data)
    assert (settings.max_steps, settings.lr, settings.seed) == (7, 3e-4, 5)
    code, _, err = cli_output(
        ["unlearn", "--config", str(run_config), "--out", str(tmp_path / "r3")],
        monkeypatch,
        capsys,
    )
    one_line_error(code, err, "obliviate finetune")

    unlearned = []

    def unlearn(*args, **kwargs):
        unlearned.append((args, kwargs))
        raise ObliviateError("stopped here")

    monkeypatch.setattr(api, "unlearn", unlearn)
    run_config.write_text(
        run_config.read_text()
        .replace("command: finetune", "command: unlearn")
        .replace("method: finetune", "method: npo")
        .replace("method_params: {}", "method_params:\n  beta: 0.2\nallow_weak: true")
        + "recipe:\n  name: tiny\n  source: shipped\n"
    )
    code, _, err = cli_output(
        ["unlearn", "--config", str(run_config), "--out", str(tmp_path / "r4")],
        monkeypatch,
        capsys,
    )
    one_line_error(code, err, "stopped here")
    (model, forget, retain, method, _, settings), options = unlearned[-1]
    assert (model, Path(forget), retain, method) == ("tiny", data, None, "npo")
    assert settings["lr"] == 3e-4 and options["method_params"] == {"beta": 0.2}
    assert options["allow_weak"] is True


def _done():
    from obliviate.workflows.training import RunResult

    return RunResult(out=Path("x"), seconds=0.0, steps=0, tokens=0)


def test_record_overlap_counts_question_and_answer() -> None:
    from obliviate.data.records import overlap_count

    a = [Record("1", "Q1?", "A"), Record("2", "Q2?", "B"), Record("3", text="a passage")]
    b = [Record("x", "Q1?", "A"), Record("y", "Q2?", "other"), Record("z", text="a passage")]
    assert overlap_count(a, b) == 2
