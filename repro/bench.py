"""`python -m repro bench`: where the time goes, each figure measured side by side in one run.

a. steps/s of the engine (repro.train) against a torchvision DataLoader loop and a NumPy
   implementation of the same network, on the same batches, one thread each;
b. the engine step's GFLOP/s against a large matrix multiply's (the arithmetic limit), as a ratio;
c. the telemetry overhead: per-layer gradient norms + activation statistics on vs off;
d. a whole experiment with trials one after another against trials spread over the cores,
   with a check that the numbers are identical.
Medians over repeats. Timings are of this machine at this moment: run it on an idle machine.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrialConfig
from .data import data_root, load
from .nets import build_mlp
from .optim import make_optimizer
from .train import seeded_generators, train

# The book's optimiser network: 784-100x4-10 ReLU, He, SGD 0.01, batch 128.
BOOK = TrialConfig(widths=(100,) * 4, activation="relu", init="he", optimizer="sgd", lr=0.01, batch_size=128,
                   test_size=1000, train_eval_size=1000)


def step_flops(cfg: TrialConfig, in_features: int = 784, classes: int = 10) -> float:
    """Multiply-adds of forward + backward (grad of inputs and of weights): 3 matmuls per layer, 2 FLOP each."""
    sizes = [in_features, *cfg.widths, classes]
    return 6.0 * cfg.batch_size * sum(a * b for a, b in zip(sizes, sizes[1:]))


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_step_time(cfg: TrialConfig, data, steps: int, repeats: int) -> float:
    """Seconds per step of the real training loop, evaluating only once at the end (on 1000 images)."""
    run = cfg.replace(iters=steps, eval_every=steps)
    train(run.replace(iters=20, eval_every=20), 0, data)  # warm-up: allocations, kernel selection
    return _median_time(lambda: train(run, 0, data), repeats) / steps


def _batches(cfg: TrialConfig, n_train: int, steps: int) -> torch.Tensor:
    batch_gen, _ = seeded_generators(0)
    return torch.randint(n_train, (steps, cfg.batch_size), generator=batch_gen)


def dataloader_step_time(cfg: TrialConfig, steps: int, repeats: int) -> float:
    """The textbook PyTorch loop: torchvision's MNIST with ToTensor per image, through a DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms
    dataset = datasets.MNIST(str(data_root()), train=True, transform=transforms.ToTensor())
    batches = _batches(cfg, len(dataset), steps).tolist()
    model = build_mlp(cfg, generator=seeded_generators(0)[1])
    optimizer = make_optimizer(model, cfg)

    def loop():
        for x, y in DataLoader(dataset, batch_sampler=batches):
            loss = F.cross_entropy(model(x.view(len(x), -1)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return _median_time(loop, repeats) / steps


def numpy_step_time(cfg: TrialConfig, data, steps: int, repeats: int) -> float:
    """The same network in NumPy, as the book writes it: affine/ReLU layers, softmax cross-entropy, SGD."""
    rng = np.random.default_rng(0)
    sizes = [784, *cfg.widths, 10]
    weights = [rng.standard_normal((a, b)).astype(np.float32) * np.sqrt(2.0 / a) for a, b in zip(sizes, sizes[1:])]
    biases = [np.zeros(b, np.float32) for b in sizes[1:]]
    x_all, y_all = data.x_train.numpy(), data.y_train.numpy()
    batches = _batches(cfg, len(y_all), steps).numpy()

    def step(index):
        x, y = x_all[index], y_all[index]
        inputs = []
        for k, (w, b) in enumerate(zip(weights, biases)):
            inputs.append(x)
            x = x @ w + b
            if k < len(weights) - 1:
                x = np.maximum(x, 0)
        p = np.exp(x - x.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        grad = p / len(y)
        for k in reversed(range(len(weights))):
            dw, db = inputs[k].T @ grad, grad.sum(0)
            if k > 0:
                grad = (grad @ weights[k].T) * (inputs[k] > 0)
            weights[k] -= cfg.lr * dw
            biases[k] -= cfg.lr * db

    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):  # NumPy's BLAS gets one thread, like torch
        return _median_time(lambda: [step(i) for i in batches], repeats) / steps


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2.0 * size ** 3 / _median_time(lambda: torch.mm(a, b), repeats) / 1e9


def experiment_wall_times(name: str = "vanishing", preset: str = "quick") -> dict:
    """One experiment run with 1 worker and with one worker per core; the trials' numbers must agree."""
    import tempfile

    from .executor import default_workers
    from .runner import run_experiment
    out = {}
    losses = {}
    for workers in (1, default_workers("cpu")):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            results = run_experiment(name, preset, device="cpu", workers=workers, progress=False,
                                     logdir=Path(tmp) / "runs", results_dir=Path(tmp) / "results")
            out[workers] = time.perf_counter() - start
            losses[workers] = [t["batch_loss"] for t in results["trials"]]
    first, *others = losses.values()
    return {"experiment": f"{name}/{preset}", "seconds_by_workers": out, "identical": all(o == first for o in others)}


def run(steps: int = 500, repeats: int = 5, experiment: str = "vanishing") -> dict:
    torch.set_num_threads(1)
    data = load("mnist", log=lambda message: None)
    engine = engine_step_time(BOOK, data, steps, repeats)
    report = {
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": torch.get_num_threads()},
        "network": "784-100x4-10 ReLU, batch 128",
        "engine_ms_per_step": engine * 1e3,
        "engine_no_telemetry_ms_per_step": engine_step_time(BOOK.replace(telemetry=False), data, steps, repeats) * 1e3,
        "numpy_ms_per_step": numpy_step_time(BOOK, data, steps, repeats) * 1e3,
        "dataloader_ms_per_step": dataloader_step_time(BOOK, min(steps, 200), repeats) * 1e3,
        "step_gflops": step_flops(BOOK) / engine / 1e9,
        "matmul_gflops": matmul_gflops(),
    }
    report["speedup_vs_numpy"] = report["numpy_ms_per_step"] / report["engine_ms_per_step"]
    report["speedup_vs_dataloader"] = report["dataloader_ms_per_step"] / report["engine_ms_per_step"]
    report["telemetry_overhead"] = report["engine_ms_per_step"] / report["engine_no_telemetry_ms_per_step"] - 1
    report["step_vs_matmul"] = report["step_gflops"] / report["matmul_gflops"]
    report["parallel"] = experiment_wall_times(experiment)
    seconds = report["parallel"]["seconds_by_workers"]
    report["parallel"]["speedup"] = seconds[1] / seconds[max(seconds)]
    import os
    report["machine"]["cpus"] = len(os.sched_getaffinity(0))
    return report


def format_report(r: dict) -> str:
    p = r["parallel"]
    workers = max(p["seconds_by_workers"])
    lines = [
        f"network {r['network']}, one intra-op thread; medians",
        f"  engine step            {r['engine_ms_per_step']:7.3f} ms",
        f"  NumPy step             {r['numpy_ms_per_step']:7.3f} ms   engine is {r['speedup_vs_numpy']:.2f}x faster",
        f"  DataLoader step        {r['dataloader_ms_per_step']:7.3f} ms   engine is "
        f"{r['speedup_vs_dataloader']:.2f}x faster",
        f"  telemetry off          {r['engine_no_telemetry_ms_per_step']:7.3f} ms   overhead of telemetry "
        f"{100 * r['telemetry_overhead']:+.1f}%",
        f"  step GFLOP/s           {r['step_gflops']:7.2f}      large matmul {r['matmul_gflops']:.2f} GFLOP/s: "
        f"{100 * r['step_vs_matmul']:.0f}% of the limit",
        f"{p['experiment']}: 1 worker {p['seconds_by_workers'][1]:.1f} s, {workers} workers "
        f"{p['seconds_by_workers'][workers]:.1f} s: {p['speedup']:.2f}x; identical results: {p['identical']}",
    ]
    return "\n".join(lines)
