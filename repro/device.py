"""Where trials run and how CUDA computes float32: device names, the numerics policy, --device auto.

The numerics policy (``Numerics``) is set once per command at the edge (the CLI's --deterministic and
--tf32) and travels inside every TrialSpec, so a spawned worker or a Ray task applies the same
policy before it trains: process-wide torch settings do not cross a process boundary by themselves.

TF32 is off unless --tf32 asks for it. On Ampere and later GPUs cuDNN runs float32 convolutions in
TF32 by default (a 10-bit mantissa: about 1e-3 relative error per product), so CNN numbers would
differ from the CPU's far beyond float32 rounding, and the claims' bounds and the tests' thresholds
were measured on the CPU. With TF32 off, CUDA float32 matches the CPU within float32 rounding
(tests/test_device.py checks it on a GPU); --tf32 trades that for speed on CNNs.

``--device auto`` measures instead of guessing: with no CUDA GPU it is the CPU; with one, it times
training steps of the run's costliest trial on one CPU thread and on the GPU (the real engine, a
few steps each) and picks CUDA only if a GPU step is shorter than a CPU step divided by the CPU
workers the run would have, since the CPU trains that many trials at once and the GPU one at a time
(see choose_device). The CPU side, by `make bench` on the 2-core development machine (2026-12-01,
torch 2.14.1, one thread): the book network's step (784-100x4-10, batch 128) 2.87 ms, DeepConvNet's
(batch 100, channels-last) 131 ms; so with 2 workers a GPU must step the book network in under
1.4 ms to be chosen. The GPU side is measured by `make device-check` (its "auto" rows, each
experiment's costliest variant on both); the README's GPU section gives those figures.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time
import warnings
from dataclasses import asdict, dataclass

import torch

from .config import ConfigError, TrialConfig


def resolve_device(device: str) -> str:
    """``device`` as torch names it ("cpu", "cuda", "cuda:1"), or a one-line ConfigError."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:  # torch's own message is a paragraph; ours names the choices
        raise ConfigError(f"--device {device}: choose auto, cpu, cuda or cuda:<index>") from None
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type != "cuda":
        raise ConfigError(f"--device {device}: choose auto, cpu, cuda or cuda:<index>")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu or auto")
    count = torch.cuda.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise ConfigError(f"--device {device}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} "
                          f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return str(parsed)


# ---- the numerics policy ----

@dataclass(frozen=True)
class Numerics:
    deterministic: bool = False   # deterministic CUDA kernels only (CPU runs are deterministic already)
    tf32: bool = False            # allow TF32 in CUDA matmuls and cuDNN convolutions

    def apply(self) -> None:
        """Make this process compute as the policy says (idempotent; every trial calls it first)."""
        if self.deterministic:
            # cuBLAS reads this when it creates a handle's workspace: set before the first CUDA
            # matmul of the process, which is why a worker applies the policy before it trains
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(self.deterministic)
        torch.backends.cudnn.benchmark = False  # its autotuner picks kernels by timing: runs could differ
        with _legacy_tf32_api():
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32


@contextlib.contextmanager
def _legacy_tf32_api():
    """torch 2.9-2.11 warn that allow_tf32 will give way to fp32_precision. We use allow_tf32 alone,
    which every torch this project admits has, since mixing the two APIs is an error in some of them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*new API settings to control TF32.*")
        yield


_policy = Numerics()


def set_policy(numerics: Numerics) -> None:
    """This process's policy: applied now, and carried by every TrialSpec made from here on."""
    global _policy
    _policy = numerics
    numerics.apply()


def policy() -> Numerics:
    return _policy


def policy_record() -> dict:
    """This process's policy and the cuBLAS setting it made, for a run's environment."""
    return {**asdict(_policy), "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def numerics_in_effect() -> dict:
    """What this process computes with now, as torch reports it (recorded per trial and per run)."""
    with _legacy_tf32_api():
        tf32_matmul, tf32_cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    return {"deterministic": torch.are_deterministic_algorithms_enabled(), "tf32_matmul": tf32_matmul,
            "tf32_cudnn": tf32_cudnn, "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


# ---- --device auto ----

def faster_device(cpu_step: float, cuda_step: float, cpu_workers: int) -> str:
    """The rule: the CPU trains ``cpu_workers`` trials at once, the GPU one at a time, so CUDA wins
    when its step is shorter than a CPU step shared among the workers."""
    return "cuda" if cuda_step * cpu_workers < cpu_step else "cpu"


def choose_device(device: str, configs: list[TrialConfig], trials: int, workers: int | None = None) -> tuple[str, dict]:
    """The device a run of ``trials`` trials of ``configs`` trains on, and why (for its results).

    Anything but "auto", or auto with no GPU, needs no measurement."""
    if device != "auto" or not torch.cuda.is_available():
        resolved = resolve_device(device)
        return resolved, {"requested": device, "chosen": resolved,
                          "rule": "as requested" if device != "auto" else "auto: no CUDA GPU visible"}
    return measured_choice(configs, trials, workers)


def measured_choice(configs: list[TrialConfig], trials: int, workers: int | None = None,
                    gpu: str = "cuda") -> tuple[str, dict]:
    """The rule (faster_device) on steps of the costliest config, timed on one CPU thread and on ``gpu``
    (make device-check's dry run passes "cpu" here, to time the CPU against itself)."""
    from .executor import TrialSpec, default_workers, estimated_cost
    costliest = max(configs, key=lambda c: estimated_cost(TrialSpec(c.to_dict(), 0, "cpu")) / c.iters)
    cpu_workers = max(1, min(workers or default_workers("cpu"), trials))
    cpu_step, gpu_step = step_seconds(costliest, ["cpu", gpu])
    chosen = faster_device(cpu_step, gpu_step, cpu_workers)
    return chosen, {"requested": "auto", "chosen": chosen,
                    "rule": "cuda if a CUDA step x CPU workers < a CPU step (one thread)",
                    "cpu_ms_per_step": 1e3 * cpu_step, "cuda_ms_per_step": 1e3 * gpu_step,
                    "cpu_workers": cpu_workers, "measured_on": describe(costliest)}


def describe(cfg: TrialConfig) -> str:
    """A network in a few characters: "conv 30x5p0,pool + 100, batch 100, adam", "100x4, batch 128, sgd"."""
    runs = []
    for width in cfg.widths:
        if runs and runs[-1][0] == width:
            runs[-1][1] += 1
        else:
            runs.append([width, 1])
    widths = ",".join(f"{w}x{n}" if n > 1 else str(w) for w, n in runs) or "no hidden layer"
    conv = f"conv {','.join(cfg.conv)} + " if cfg.model == "cnn" else ""
    return f"{conv}{widths}, batch {cfg.batch_size}, {cfg.optimizer}"


def step_seconds(cfg: TrialConfig, devices: list[str], rounds: int = 3, budget: float = 0.2) -> list[float]:
    """Seconds per training step of ``cfg`` on each device (one intra-op thread on the CPU, as a worker
    trains), timed on the real engine with its telemetry: the difference of two runs that differ only
    in their number of steps, so set-up and the final evaluation cancel. The devices take turns in
    each of ``rounds`` rounds and the medians are kept, so a busy moment falls on all of them alike."""
    from .engine import train
    from .executor import _dataset
    from .nets import takes_flat_input
    small = cfg.replace(test_size=min(cfg.test_size or 10000, 500), train_eval_size=min(cfg.train_eval_size, 500),
                        probe_size=min(cfg.probe_size, 500), post_loss_every=0)

    def seconds(device: str, steps: int) -> float:
        data = _dataset(cfg.dataset, device, takes_flat_input(cfg))
        start = time.perf_counter()
        train(small.replace(iters=steps, eval_every=steps), 0, data)  # ends reading results back: synced
        return time.perf_counter() - start

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = {}
        for d in devices:
            seconds(d, 2)  # warm-up: kernel selection, allocator, CUDA context
            # a first guess from 10 steps (set-up and evaluation cancel), then enough for ``budget`` seconds
            guess = max(seconds(d, 12) - seconds(d, 2), 1e-5) / 10
            steps[d] = int(min(max(budget / guess, 10), 2000))
        per_step: dict[str, list[float]] = {d: [] for d in devices}
        for _ in range(rounds):
            for d in devices:
                per_step[d].append(max(seconds(d, 2 + steps[d]) - seconds(d, 2), 1e-9) / steps[d])
        return [statistics.median(per_step[d]) for d in devices]
    finally:
        torch.set_num_threads(threads)
