"""What the speed benchmarks share: the machine's matmul peak, FLOP and token counts of a
training step, and the peak memory of a child process.

Imported by ``throughput.py`` and ``scaling.py`` (which put this folder on ``sys.path``)
and by ``tests/test_benchmark_measure.py``; not part of the obliviate package.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils import flop_counter

from obliviate.rundir import high_water_mb


def device_name(device: torch.device) -> str:
    """The accelerator's name, or the CPU's model name and how many cores torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
    sizes: Sequence[int] = (1024, 2048, 4096),
    seconds: float = 1.0,
) -> tuple[float, int]:
    """The machine's measured matmul peak: FLOP/s of the fastest square size n × n @ n × n
    (2·n³ FLOPs each), each size timed for about ``seconds`` after one untimed product.
    Returns (FLOP/s, n)."""
    device = torch.device(device)
    best = (0.0, 0)
    for n in sizes:
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        torch.matmul(a, b)
        synchronize(device)
        count, started = 0, time.perf_counter()
        while True:
            torch.matmul(a, b)
            count += 1
            synchronize(device)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        best = max(best, (2 * n**3 * count / elapsed, n))
    return best


class PassCounter:
    """Every pass through a decoder layer or the output head of ``model`` *or any copy of it*
    (a frozen reference made with ``copy.deepcopy`` is a different object of the same
    classes), counted through global forward pre-hooks while the counter is entered.

    - ``train_tokens`` / ``reference_tokens``: positions (padding included: it is computed)
      through the decoder with and without autograd recording, weighted by depth, so a
      pass that stops at layer ℓ of L (RMU's) counts ℓ/L of its positions.
    - ``model_flops``: per layer pass, 2·N·T forward, + 2·N·T for the weights' gradients
      when they learn, + 2·N·T for the gradients of the layer's activations when its
      weights learn or its input needs a gradient (a layer that learns needs them for its
      own norms and products); N the layer's parameters, T its positions. So 6·N·T for an
      ordinary training pass, 2·N·T for a reference pass under ``torch.no_grad`` or for a
      frozen layer below everything that learns (RMU's), 4·N·T for a frozen layer above
      one that learns. The output head counts the same
      way with N = vocabulary × hidden and T = the rows it projects (obliviate projects
      only labelled positions). Attention's own products and the embedding lookup are
      not in this figure (``counted_flops`` has the first).
    """

    def __init__(self, model: torch.nn.Module):
        decoder = model.get_decoder()
        self.layer_type = type(decoder.layers[0])
        self.n_layers = len(decoder.layers)
        self.layer_params = sum(p.numel() for p in decoder.layers[0].parameters())
        head = model.get_output_embeddings()
        self.head_shape = (head.in_features, head.out_features)
        self.head_params = head.weight.numel()
        self.non_embedding_params = self.layer_params * self.n_layers
        self._handle = None
        self.reset()

    def reset(self) -> None:
        self.train_layer_positions = 0
        self.reference_layer_positions = 0
        self.head_rows = 0
        self.model_flops = 0

    @property
    def train_tokens(self) -> float:
        return self.train_layer_positions / self.n_layers

    @property
    def reference_tokens(self) -> float:
        return self.reference_layer_positions / self.n_layers

    def snapshot(self) -> tuple[float, float, int]:
        """(train tokens, reference tokens, model FLOPs) so far."""
        return self.train_tokens, self.reference_tokens, self.model_flops

    def _hook(self, module: torch.nn.Module, args: tuple) -> None:
        if isinstance(module, self.layer_type):
            params, is_layer = self.layer_params, True
        elif (
            isinstance(module, torch.nn.Linear)
            and (module.in_features, module.out_features) == self.head_shape
        ):
            params, is_layer = self.head_params, False
        else:
            return
        hidden = args[0]
        positions = hidden.shape[:-1].numel()
        grad = torch.is_grad_enabled()
        weights_learn = grad and any(p.requires_grad for p in module.parameters())
        backward = weights_learn or (grad and hidden.requires_grad)
        self.model_flops += 2 * params * positions * (1 + weights_learn + backward)
        if not is_layer:
            self.head_rows += positions
        elif grad:
            self.train_layer_positions += positions
        else:
            self.reference_layer_positions += positions

    def __enter__(self) -> PassCounter:
        self._handle = torch.nn.modules.module.register_module_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query, key, value)


def _attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


def _count_cpu_attention() -> None:
    """Teach torch's FLOP counter the CPU kernel of scaled-dot-product attention (it knows
    the CUDA ones only), with its formula: the full L×L products, causal or not."""
    aten = torch.ops.aten
    formulas = {
        aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward_flops,
    }
    for op, formula in formulas.items():
        if op not in flop_counter.flop_registry:
            flop_counter.register_flop_formula(op)(formula)


def counted_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products and attention that ``fn`` actually runs, forward and
    backward (``torch.utils.flop_counter``); elementwise work is not counted."""
    _count_cpu_attention()
    counter = flop_counter.FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def run_with_peak_rss(
    command: Sequence[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    every: float = 0.1,
) -> tuple[int, float]:
    """Run ``command``; return (exit code, peak RSS in MiB of the largest process it ran).

    The launch's processes (the command and every descendant, e.g. a ``torchrun``'s
    workers) are looked at every ``every`` seconds; each one's high-water mark is read
    (``VmHWM``), so a peak is missed only when it comes in a process's last ``every``
    seconds. The figure is the largest single process, not their sum. Output goes to
    ``log``.
    """
    import psutil

    peaks: dict[int, float] = {}
    with open(log or os.devnull, "wb") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            launcher = psutil.Process(process.pid)
            while process.poll() is None:
                try:
                    members = [launcher, *launcher.children(recursive=True)]
                except psutil.Error:
                    members = []
                for member in members:
                    peak = high_water_mb(member.pid)
                    if peak is None:
                        try:
                            peak = member.memory_info().rss / 2**20
                        except psutil.Error:
                            continue
                    peaks[member.pid] = max(peaks.get(member.pid, 0.0), peak)
                time.sleep(every)
        except BaseException:  # Ctrl-C: stop the launch and its workers too
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    return process.returncode, max(peaks.values(), default=0.0)
