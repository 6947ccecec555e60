"""`python -m repro bench`: where the time goes, each figure measured side by side in one run.

a. steps/s of the engine (repro.engine) against a torchvision DataLoader loop and a NumPy
   implementation of the same network, on the same batches, one thread each;
b. the engine step's GFLOP/s against a large matrix multiply's (the arithmetic limit), as a ratio;
c. the telemetry overhead: per-layer gradient norms + activation statistics on vs off;
d. a whole experiment with trials one after another against trials spread over the cores,
   with a check that the numbers are identical;
e. seeds: a step of one trial against a step of K seeds trained as one batched model (repro.batched,
   where this checkout has it), and the per-seed time of each, side by side.
``--device cuda`` times the engine, its matmuls, DeepConvNet and the seeds on the GPU; the figures
that compare CPU implementations (NumPy, DataLoader, engine choices, cores) are the CPU's alone.
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
from .data import load, verify
from .nets import build_mlp
from .optim import make_optimizer
from .setups import BOOK_NET
from .engine import seeded_generators, train

# The book's optimiser network (784-100x4-10 ReLU, He, SGD 0.01, batch 128), evaluated on 1000 images.
BOOK = BOOK_NET.replace(test_size=1000, train_eval_size=1000)


def layer_sizes(cfg: TrialConfig, in_features: int = 784, classes: int = 10) -> list[tuple[int, int]]:
    sizes = [in_features, *cfg.widths, classes]
    return list(zip(sizes, sizes[1:]))


def step_flops(cfg: TrialConfig) -> float:
    """FLOP of one training step: per layer a forward and a weight-gradient matmul, and an input-gradient
    matmul for every layer but the first (the images need no gradient); 2 FLOP per multiply-add."""
    macs = [a * b for a, b in layer_sizes(cfg)]
    return 2.0 * cfg.batch_size * (2 * sum(macs) + sum(macs[1:]))


def _interleaved(jobs: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each job in each round, timed in turns (a, b, c, a, b, c, ...): a slow moment of a
    shared machine then falls on every job of that round alike."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of slow/fast: each ratio compares two timings taken seconds apart."""
    return statistics.median(a / b for a, b in zip(slow, fast))


def engine_job(cfg: TrialConfig, data, steps: int):
    """The real training loop (repro.engine), evaluating only once at the end (on 1000 images)."""
    run = cfg.replace(iters=steps, eval_every=steps)
    train(run.replace(iters=20, eval_every=20), 0, data)  # warm-up: allocations, kernel selection
    return lambda: train(run, 0, data)


def _batches(cfg: TrialConfig, n_train: int, steps: int) -> torch.Tensor:
    batch_gen, _ = seeded_generators(0)
    return torch.randint(n_train, (steps, cfg.batch_size), generator=batch_gen)


def dataloader_job(cfg: TrialConfig, steps: int):
    """The textbook PyTorch loop: torchvision's MNIST with ToTensor per image, through a DataLoader."""
    import tempfile

    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms
    with tempfile.TemporaryDirectory() as root:
        # torchvision reads only uncompressed files, and $REPRO_DATA may hold them gzipped: it gets the
        # verified bytes in a folder of its own layout, which it has read into memory once built
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name, payload in verify("mnist").items():
            (raw / name).write_bytes(payload)
        dataset = datasets.MNIST(root, train=True, transform=transforms.ToTensor())
    batches = _batches(cfg, len(dataset), steps).tolist()
    model = build_mlp(cfg, generator=seeded_generators(0)[1])
    optimizer = make_optimizer(model, cfg)

    def loop():
        for x, y in DataLoader(dataset, batch_sampler=batches):
            loss = F.cross_entropy(model(x.view(len(x), -1)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loop


def numpy_job(cfg: TrialConfig, data, steps: int):
    """The same network in NumPy, as the book writes it: affine/ReLU layers, softmax cross-entropy, SGD."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((a, b)).astype(np.float32) * np.sqrt(2.0 / a) for a, b in layer_sizes(cfg)]
    biases = [np.zeros(b, np.float32) for _, b in layer_sizes(cfg)]
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
    return lambda: [step(i) for i in batches]


def synced(job, device: str):
    """``job`` followed by waiting for the GPU: CUDA launches return before the work is done."""
    if not device.startswith("cuda"):
        return job
    return lambda: (job(), torch.cuda.synchronize())


def matmuls_job(cfg: TrialConfig, steps: int, numpy: bool = False, device: str = "cpu"):
    """Only the step's matrix multiplies (the shapes step_flops counts), with nothing around them:
    the fastest this network's step could be with these kernels (torch's, or NumPy's BLAS)."""
    b = cfg.batch_size
    products = []
    for k, (n_in, n_out) in enumerate(layer_sizes(cfg)):
        x, w, g = (torch.randn(*shape, device=device) for shape in ((b, n_in), (n_out, n_in), (b, n_out)))
        products += [(x, w.t()), (g.t(), x)] + ([(g, w)] if k else [])
    if numpy:  # NumPy's operands in the layout numpy_job uses: weights stored in x out
        products = [(p.contiguous().numpy(), q.contiguous().numpy()) for p, q in products]
        return lambda: [p @ q for _ in range(steps) for p, q in products]
    return synced(lambda: [torch.mm(p, q) for _ in range(steps) for p, q in products], device)


CNN_STEPS = 3  # a DeepConvNet step is ~40x a book-MLP step


def choice_jobs(cfg: TrialConfig, data, steps: int) -> dict:
    """What the engine chose, against the alternative: name -> (job, steps it runs)."""
    index = _batches(cfg, len(data.y_train), steps)
    model = build_mlp(cfg, generator=seeded_generators(0)[1])
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    loop_adam = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    fused_adam = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    return {
        "gather x[index]": (lambda: [data.x_train[i] for i in index], steps),
        "gather index_select": (lambda: [data.x_train.index_select(0, i) for i in index], steps),
        "adam step, loop over parameters": (lambda: [loop_adam.step() for _ in range(steps)], steps),
        "adam step, fused": (lambda: [fused_adam.step() for _ in range(steps)], steps),
        "DeepConvNet step, NCHW": (_convnet_job(channels_last=False), CNN_STEPS),
        "DeepConvNet step, channels-last": (_convnet_job(channels_last=True), CNN_STEPS),
    }


def _convnet_job(channels_last: bool, device: str = "cpu"):
    """Training steps of the book's DeepConvNet (batch 100) in one memory format."""
    from .nets import build_model
    from .setups import DEEP_CONVNET as cfg
    model = build_model(cfg, generator=seeded_generators(0)[1]).to(device)
    x, y = torch.rand(cfg.batch_size, 1, 28, 28, device=device), torch.randint(10, (cfg.batch_size,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)

    def loop():
        for _ in range(CNN_STEPS):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    loop = synced(loop, device)
    loop()  # warm-up: oneDNN (cuDNN) picks its kernels on the first call
    return loop


def matmul_gflops(size: int = 1024, repeats: int = 5, device: str = "cpu") -> float:
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    mm = synced(lambda: torch.mm(a, b), device)
    mm()
    return 2.0 * size ** 3 / statistics.median(_interleaved({"mm": mm}, repeats)["mm"]) / 1e9


def experiment_wall_times(name: str = "vanishing", preset: str = "quick", rounds: int = 2) -> dict:
    """The experiment run with 1 worker and with one per core, in turns; the trials' numbers must agree.

    speedup: the median over rounds of (1 worker) / (all workers), each pair run back to back."""
    import tempfile

    from .executor import default_workers
    from .layout import Layout
    from .runner import run_experiment
    counts = (1, default_workers("cpu"))
    seconds: dict[int, list[float]] = {w: [] for w in counts}
    losses = []

    def once(workers: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            results = run_experiment(name, preset, device="cpu", workers=workers, progress=False,
                                     layout=Layout(Path(tmp) / "results", Path(tmp) / "runs"))
            seconds[workers].append(time.perf_counter() - start)
            losses.append([t.batch_loss for t in results.trials])

    _interleaved({w: (lambda w=w: once(w)) for w in counts}, rounds)
    return {"experiment": f"{name}/{preset}", "rounds": rounds,
            "seconds_by_workers": {w: statistics.median(t) for w, t in seconds.items()},
            "speedup": paired_ratio(seconds[counts[0]], seconds[counts[-1]]),
            "identical": all(run == losses[0] for run in losses)}


# K seeds batched: on a GPU a step of 100 seeds costs about what one costs (launches dominate), on a
# CPU the arithmetic grows with K, so the CPU stops at 10
SEED_COUNTS = {"cpu": (3, 10), "cuda": (3, 10, 100)}


def seed_jobs(cfg: TrialConfig, device: str, steps: int) -> tuple[dict, str | None]:
    """name -> job for K seeds trained as one batched model (repro.batched), or why there are none.

    Each job returns repro.batched.step_time's seconds per batched step, which it times itself."""
    try:
        from . import batched
    except ImportError:
        return {}, "repro.batched is not in this checkout"
    refusal = batched.supports(cfg)
    if refusal:
        return {}, refusal
    return {k: (lambda k=k: batched.step_time(cfg, k, device, steps)) for k in SEED_COUNTS[device.split(":")[0]]}, None


def seeds_figures(one_trial: list[float], seed_times: dict[int, list[float]], why_not: str | None) -> dict:
    """One trial's step against K batched seeds' (each list: seconds per step, one per round)."""
    out = {"one_trial_ms_per_step": 1e3 * statistics.median(one_trial), "batched": why_not or {}}
    for k, times in seed_times.items():
        out["batched"][str(k)] = {"ms_per_step": 1e3 * statistics.median(times),
                                  "ms_per_seed": 1e3 * statistics.median(times) / k,
                                  "per_seed_speedup": statistics.median(a / (b / k) for a, b in zip(one_trial, times))}
    return out


def run(steps: int = 500, repeats: int = 7, experiment: str | None = "vanishing", device: str = "cpu") -> dict:
    """Every figure of the bench on ``device``; ``experiment=None`` leaves out the (minute-long) cores
    comparison. On CUDA, the CPU-only figures (NumPy, DataLoader, choices, cores) are left out."""
    import os

    from threadpoolctl import threadpool_limits
    torch.set_num_threads(1)
    on_cpu = device == "cpu"
    data = load("mnist", device=device, log=lambda message: None)
    loader_steps = min(steps, 100)  # a DataLoader step is ~10x slower: fewer steps, same statistics
    jobs = {"engine": engine_job(BOOK, data, steps),
            "engine, no telemetry": engine_job(BOOK.replace(telemetry=False), data, steps),
            "matmuls only": matmuls_job(BOOK, steps, device=device)}
    if on_cpu:
        jobs |= {"numpy": numpy_job(BOOK, data, steps), "dataloader": dataloader_job(BOOK, loader_steps),
                 "numpy matmuls only": matmuls_job(BOOK, steps, numpy=True)}
    batched_jobs, why_not = seed_jobs(BOOK, device, steps)
    seed_times: dict[int, list[float]] = {k: [] for k in batched_jobs}
    jobs |= {f"{k} seeds": (lambda k=k, job=job: seed_times[k].append(job())) for k, job in batched_jobs.items()}
    with threadpool_limits(1):  # NumPy's BLAS gets one thread, like torch
        rounds = _interleaved(jobs, repeats)
        choice = choice_jobs(BOOK, data, steps) if on_cpu else {"DeepConvNet step": (_convnet_job(False, device), CNN_STEPS)}
        choices = _interleaved({name: job for name, (job, _) in choice.items()}, repeats)
    per_step = {name: [t / (loader_steps if name == "dataloader" else steps) for t in times]
                for name, times in rounds.items()}
    ms = {name: 1e3 * statistics.median(times) for name, times in per_step.items()}
    report = {
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": len(os.sched_getaffinity(0)),
                    "cpu": _cpu_name(), "device": device,
                    "gpu": torch.cuda.get_device_name(device) if not on_cpu else None},
        "network": "784-100x4-10 ReLU, batch 128, SGD",
        "repeats": repeats,
        "engine_ms_per_step": ms["engine"],
        "engine_no_telemetry_ms_per_step": ms["engine, no telemetry"],
        "matmuls_only_ms_per_step": ms["matmuls only"],
        "step_gflop": step_flops(BOOK) / 1e9,
        "step_gflops": step_flops(BOOK) / (ms["engine"] / 1e3) / 1e9,
        "matmul_gflops": matmul_gflops(device=device),
        "choices_ms_per_step": {name: 1e3 * statistics.median(t) / choice[name][1] for name, t in choices.items()},
        # ratios: medians of per-round ratios (see paired_ratio)
        "telemetry_overhead": paired_ratio(per_step["engine"], per_step["engine, no telemetry"]) - 1,
        "matmul_share_of_step": 1 / paired_ratio(per_step["engine"], per_step["matmuls only"]),
        "seeds": seeds_figures(per_step["engine"], seed_times, why_not),
    }
    report["step_vs_matmul"] = report["step_gflops"] / report["matmul_gflops"]
    if on_cpu:
        report |= {
            "numpy_ms_per_step": ms["numpy"],
            "numpy_matmuls_only_ms_per_step": ms["numpy matmuls only"],
            "dataloader_ms_per_step": ms["dataloader"],
            "speedup_vs_numpy": paired_ratio(per_step["numpy"], per_step["engine"]),
            "speedup_vs_dataloader": paired_ratio(per_step["dataloader"], per_step["engine"]),
        }
        if experiment:
            report["parallel"] = experiment_wall_times(experiment)
    return report


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform
        return platform.processor() or "unknown"


def format_report(r: dict) -> str:
    c = r["choices_ms_per_step"]
    on_cpu = r["machine"]["device"] == "cpu"
    where = r["machine"]["cpu"] if on_cpu else f"{r['machine']['gpu']} ({r['machine']['device']})"
    lines = [
        f"network {r['network']}, {where}, one intra-op thread; medians of {r['repeats']} "
        "interleaved rounds (ratios: median of the rounds' ratios)",
        f"  engine step            {r['engine_ms_per_step']:7.3f} ms",
    ]
    if on_cpu:
        lines += [
            f"  NumPy step             {r['numpy_ms_per_step']:7.3f} ms   engine is {r['speedup_vs_numpy']:.2f}x faster",
            f"  DataLoader step        {r['dataloader_ms_per_step']:7.3f} ms   engine is "
            f"{r['speedup_vs_dataloader']:.2f}x faster"]
    numpy_mm = f" (NumPy's BLAS on the same shapes: {r['numpy_matmuls_only_ms_per_step']:.3f} ms)" if on_cpu else ""
    lines += [
        f"  telemetry off          {r['engine_no_telemetry_ms_per_step']:7.3f} ms   overhead of telemetry "
        f"{100 * r['telemetry_overhead']:+.1f}%",
        f"  its matmuls alone      {r['matmuls_only_ms_per_step']:7.3f} ms   {100 * r['matmul_share_of_step']:.0f}% "
        f"of the engine step{numpy_mm}",
        f"  step GFLOP/s           {r['step_gflops']:7.2f}      ({r['step_gflop'] * 1e3:.1f} MFLOP a step) large "
        f"matmul {r['matmul_gflops']:.2f} GFLOP/s: {100 * r['step_vs_matmul']:.0f}% of the limit",
    ]
    if on_cpu:
        lines += [
            "engine choices, per step of the same batches:",
            f"  batch gather           x[index] {c['gather x[index]']:.3f} ms, index_select "
            f"{c['gather index_select']:.3f} ms",
            f"  Adam step              loop over parameters {c['adam step, loop over parameters']:.3f} ms, fused "
            f"{c['adam step, fused']:.3f} ms",
            f"  DeepConvNet step       NCHW {c['DeepConvNet step, NCHW']:.1f} ms, channels-last "
            f"{c['DeepConvNet step, channels-last']:.1f} ms"]
    else:
        lines.append(f"  DeepConvNet step       {c['DeepConvNet step']:7.1f} ms")
    lines.append(seeds_line(r["seeds"]))
    if "parallel" in r:
        p = r["parallel"]
        workers = max(p["seconds_by_workers"])
        lines.append(f"{p['experiment']}, median of {p['rounds']} rounds: 1 worker {p['seconds_by_workers'][1]:.1f} s, "
                     f"{workers} workers {p['seconds_by_workers'][workers]:.1f} s: {p['speedup']:.2f}x; identical "
                     f"results: {p['identical']}")
    return "\n".join(lines)


def seeds_line(seeds: dict) -> str:
    """One trial's step beside K batched seeds' step and per-seed time, on one line."""
    parts = [f"one trial {seeds['one_trial_ms_per_step']:.3f} ms"]
    if isinstance(seeds["batched"], str):
        parts.append(f"batched: not available ({seeds['batched']})")
    for k, b in seeds["batched"].items() if isinstance(seeds["batched"], dict) else ():
        parts.append(f"{k} seeds batched {b['ms_per_step']:.3f} ms, {b['ms_per_seed']:.3f} ms per seed "
                     f"({b['per_seed_speedup']:.2f}x)")
    return "  seeds, per step        " + " | ".join(parts)
