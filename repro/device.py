"""Where trials run: device names, and --device auto.

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

import statistics
import time

import torch

from .config import ConfigError, TrialConfig
from .executor import TrialSpec, _dataset, default_workers, estimated_cost


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
    costliest = max(configs, key=lambda c: estimated_cost(TrialSpec(c, 0, "cpu")) / c.iters)
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
