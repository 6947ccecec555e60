"""Runs independent trials: in this process, or spread over the machine's cores.

Each worker process uses one intra-op thread. Measured on the 2-core development machine, a
784-100x4-10 step took 1.1 ms with one thread, but 50 ms with two threads while another process
was busy: oversubscribed OpenMP threads spin against each other. So the suite parallelises over
trials (this process and a spawned one per further core, one thread each, longest trials first),
never inside a small matmul. Because every trial
is a pure function of (config, seed) on one thread, the results do not depend on how many
workers ran them, nor on which executor did: ``local`` (this machine's cores) or ``ray`` (one Ray
task per trial, on a local Ray instance or a cluster; the optional extra ``pip install -e '.[ray]'``).
"""
from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from .numerics import Numerics, numerics_in_effect, policy


@dataclass
class TrialSpec:
    config: object                   # the TrialConfig (validated when it was built)
    seed: int
    device: str
    logdir: str | None = None        # the trial's own TensorBoard directory
    hparams: dict = field(default_factory=dict)   # extra columns for the hparams table (variant, ...)
    tag: object = None               # opaque label handed back with the result
    keep_state: bool = False         # hand back the trained weights (CPU state_dict) as result["state"]
    numerics: Numerics = field(default_factory=policy)   # the policy of the process that made the spec


def default_workers(device: str) -> int:
    if device.startswith("cuda"):
        return 1  # one process owns the GPU; seeds there are cheap, launches are the cost
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


_DATA_CACHE: dict = {}


def _dataset(name: str, device: str, flat: bool):
    from .data import load
    key = (name, device, flat)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load(name, device=device, flatten=flat)
    return _DATA_CACHE[key]


# Bytes a trial holds for each of its steps besides the network: on the device a float32 batch loss and a
# float32 gradient norm per parameter tensor; on the host the loss as a Python float in the result's list
# (32 bytes) and its text in the results JSON (about 20 bytes, twice while the file is written).
STEP_BYTES_HOST = 72
COPIES_OF_WEIGHTS = 4  # weights, gradients and up to two optimiser moments (Adam, AdaDelta)


def available_memory(device: str) -> int:
    """Bytes a trial can have now: the GPU's free memory with what torch holds cached, or the host's."""
    if device.startswith("cuda"):
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(torch.device(device))[0] + cached
    try:
        with open("/proc/meminfo") as fh:  # Linux: MemAvailable counts the page cache that can be reclaimed
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_memory(cfg, device: str) -> None:
    """Refuse, in one line with the numbers, a trial that cannot fit in memory, before anything is built:
    its weights with their gradients and optimiser state, its activations (a training batch's, kept for the
    backward pass with their gradients, and two layers of an evaluation chunk) and its per-step records."""
    from .config import ConfigError
    from .data import image_shape
    from .engine import EVAL_BATCH
    from .nets import size_of
    params, outputs = size_of(cfg, image_shape(cfg.dataset))
    weights = 4 * COPIES_OF_WEIGHTS * sum(params)
    activations = 4 * (2 * cfg.batch_size * sum(outputs) + 2 * EVAL_BATCH * max(outputs))
    records = cfg.iters * (4 * (1 + len(params)) + STEP_BYTES_HOST)
    need, free = weights + activations + records, available_memory(device)
    if need <= free:
        return
    where = "this machine" if device == "cpu" else device
    network = ("widths",) if cfg.model == "mlp" else ("conv", "widths")
    _, keys = max((weights, network), (activations, (*network, "batch_size")), (records, ("iters",)))  # the largest
    values = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                       for k, v in ((k, getattr(cfg, k)) for k in keys))
    raise ConfigError(f"{values}: a trial would need about {_size(need)} of memory ({sum(params):,} weights: "
                      f"{_size(weights)} with gradients and optimiser state; activations: {_size(activations)}; "
                      f"{cfg.iters:,} steps' records: {_size(records)}), and {where} has {_size(free)} available; "
                      f"make {' or '.join(keys)} smaller")


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000:
            break
        n /= 1000
    return f"{n:.3g} {unit}"


def check_runnable(specs: Iterable[TrialSpec]) -> None:
    """Every spec's config (validated where it was built) fits in memory: refused here, before any trial trains."""
    for cfg, device in dict.fromkeys((spec.config, spec.device) for spec in specs):
        check_memory(cfg, device)


def run_trial(spec: TrialSpec, progress: Callable[[int], None] | None = None) -> dict:
    from .config import ConfigError
    from .nets import takes_flat_input
    from .tb import TrialWriter
    from .engine import train
    cfg = spec.config
    spec.numerics.apply()  # a spawned worker or Ray task starts with torch's defaults, not the caller's
    data = _dataset(cfg.dataset, spec.device, takes_flat_input(cfg))
    if spec.logdir:  # a rerun (or resume) replaces what a killed attempt left, never adds a copy
        shutil.rmtree(spec.logdir, ignore_errors=True)
    writer = TrialWriter(Path(spec.logdir), spec.hparams) if spec.logdir else None
    try:
        result = train(cfg, spec.seed, data, writer=writer, progress=progress, keep_state=spec.keep_state)
    except RuntimeError as err:  # torch refuses an operation that has no deterministic CUDA kernel
        if spec.numerics.deterministic and "deterministic" in str(err):
            raise ConfigError(f"--deterministic: {str(err).strip().splitlines()[0]}; run without it") from None
        raise
    result["tag"] = spec.tag
    result["numerics"] = numerics_in_effect()
    return result


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _init_worker(threads: int, parent: int) -> None:
    torch.set_num_threads(threads)
    # Ctrl-C and a closed terminal reach the whole process group: the parent alone handles them, and stops
    # the pool (SIGTERM) after saving what finished. A worker must not train on after its parent is gone,
    # however it went (SIGKILL runs no cleanup): on Linux the kernel kills it with its parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took hold
        os._exit(1)


EXECUTORS = ("local", "ray")


def execute(specs: Iterable[TrialSpec], workers: int, threads: int = 1,
            on_done: Callable[[dict], None] | None = None, step_progress=None,
            executor: str = "local", address: str | None = None) -> list[dict]:
    """Run every spec; results in the order of ``specs``. ``on_done`` sees each result as it lands.

    ``executor="ray"`` sends each spec as a Ray task to the cluster at ``address`` ("auto" or
    host:port), or with none to a local Ray instance of ``workers`` CPUs started for this call."""
    check_executor(executor, address)
    specs = list(specs)
    if not specs:
        return []
    check_runnable(specs)
    if executor == "ray":
        return _execute_ray(specs, workers, threads, on_done, address)
    groups = seed_groups(specs)
    if workers <= 1 or len(groups) <= 1:
        torch.set_num_threads(threads)
        results: dict[int, dict] = {}
        for group in groups:
            chosen = [specs[i] for i in group]
            for i, result in zip(group, run_seed_group(chosen) if len(group) > 1 else
                                 [run_trial(chosen[0], step_progress)]):
                results[i] = result
                if on_done:
                    on_done(result)
        return [results[i] for i in range(len(specs))]
    return _execute_local(specs, workers, threads, on_done)


def batches_seeds(device: str) -> bool:
    """Whether a variant's seeds train as one batched model (repro/batched.py) on ``device``: on a GPU, where
    a small network's step is a few dozen kernel launches each too small to fill it, K seeds cost about what
    one does; not on the CPU, where the cores already take one trial each and the one-trial engine's numbers
    are the suite's reference numbers to the bit (batched ones agree within float32 rounding only)."""
    return device.startswith("cuda")


def seed_groups(specs: list[TrialSpec]) -> list[list[int]]:
    """Indices of ``specs`` grouped as they train: the seeds of one config together where it batches
    (batches_seeds, and repro.batched.supports the config), every other spec alone; in first-seen order."""
    from .batched import supports
    groups: dict = {}
    for i, spec in enumerate(specs):
        together = batches_seeds(spec.device) and supports(spec.config, spec.device) is None
        key = (spec.config, spec.device, spec.keep_state) if together else i
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def run_seed_group(specs: list[TrialSpec]) -> list[dict]:
    """Trials that differ only in seed, trained as one batched model: each result as run_trial's."""
    from .batched import train_seeds
    from .nets import takes_flat_input
    from .tb import TrialWriter
    cfg, first = specs[0].config, specs[0]
    first.numerics.apply()
    data = _dataset(cfg.dataset, first.device, takes_flat_input(cfg))
    writers = []
    for spec in specs:
        if spec.logdir:
            shutil.rmtree(spec.logdir, ignore_errors=True)
        writers.append(TrialWriter(Path(spec.logdir), spec.hparams) if spec.logdir else None)
    results = train_seeds(cfg, [spec.seed for spec in specs], data, writers, keep_state=first.keep_state)
    for spec, result in zip(specs, results):
        result["tag"] = spec.tag
        result["numerics"] = numerics_in_effect()
    return results


def estimated_cost(spec: TrialSpec) -> float:
    """Multiply-adds a trial will do (training steps + evaluations), for longest-first scheduling.

    One forward of a single image under torch's FlopCounterMode gives the per-image cost; a
    training image costs about 3 forwards (forward, input and weight gradients)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .data import image_shape
    from .nets import build_model
    cfg = spec.config
    shape = image_shape(cfg.dataset)
    model = build_model(cfg, input_shape=shape).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *shape) if cfg.model == "cnn" else torch.zeros(1, math.prod(shape)))
    per_image = counter.get_total_flops()
    evaluations = -(-cfg.iters // cfg.eval_every)
    eval_images = (cfg.test_size or 10000) + cfg.train_eval_size
    return per_image * (3 * cfg.iters * cfg.batch_size + evaluations * eval_images)


def _execute_local(specs: list[TrialSpec], workers: int, threads: int,
                   on_done: Callable[[dict], None] | None) -> list[dict]:
    """workers - 1 spawned processes plus this one, longest jobs first; a job is one trial, or a variant's
    seeds trained together (seed_groups).

    This process starts training at once while the others import torch (a worker's first trial
    waits ~6 s: torch, then torch._dynamo on the first optimiser, then the dataset), and the
    longest jobs go first so that no long one is left running alone at the end."""
    jobs = seed_groups(specs)
    costs = [sum(estimated_cost(specs[i]) for i in job) for job in jobs]
    queue = deque(sorted(range(len(jobs)), key=lambda j: -costs[j]))
    results: list[dict | None] = [None] * len(specs)
    lock, landed = threading.Lock(), threading.Condition()
    errors: list[BaseException] = []

    def take() -> int | None:
        with lock:
            return queue.popleft() if queue and not errors else None

    def store(j: int, job_results: list[dict]) -> None:
        with landed:
            for i, result in zip(jobs[j], job_results):
                results[i] = result
                if on_done:
                    on_done(result)
            landed.notify_all()

    def submit_next() -> None:
        j = take()
        if j is not None:
            pool.apply_async(_run_job, ((j, [specs[i] for i in jobs[j]]),), callback=from_pool, error_callback=failed)

    def from_pool(item: tuple[int, list[dict]]) -> None:  # runs in the pool's result thread: never let it raise
        try:
            store(*item)
            submit_next()
        except BaseException as err:
            failed(err)

    def failed(err: BaseException) -> None:
        with landed:
            errors.append(err)
            landed.notify_all()

    # spawn, not fork: forking a process whose OpenMP pool already started can deadlock
    helpers = min(workers - 1, len(jobs) - 1)
    pool = multiprocessing.get_context("spawn").Pool(helpers, initializer=_init_worker,
                                                     initargs=(threads, os.getpid()))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(helpers):
            submit_next()
        while (j := take()) is not None:
            store(*_run_job((j, [specs[i] for i in jobs[j]])))
        with landed:
            landed.wait_for(lambda: errors or all(r is not None for r in results))
        if errors:
            raise errors[0]
        pool.close()
    finally:
        pool.terminate()  # on Ctrl-C or an error: stop the workers now; finished trials are already saved
        pool.join()
        torch.set_num_threads(previous_threads)
    return results


def _run_job(item: tuple[int, list[TrialSpec]]) -> tuple[int, list[dict]]:
    job, specs = item
    return job, run_seed_group(specs) if len(specs) > 1 else [run_trial(specs[0])]


def check_executor(executor: str, address: str | None) -> None:
    """One-line errors for an unknown executor, a stray --address or a missing ray, before any work."""
    from .config import ConfigError
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor}: choose from {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise ConfigError(f"--address {address}: only --executor ray joins a cluster")
    if executor == "ray":
        _import_ray()


def _import_ray():
    from .config import ConfigError
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray: the ray package is not installed; install it with "
                          "pip install -e '.[ray]' (or make setup-ray)") from None
    return ray


def _ray_trial(spec: TrialSpec, threads: int) -> dict:
    torch.set_num_threads(threads)  # a Ray worker is a long-lived process: set it for every task
    return run_trial(spec)


def _execute_ray(specs: list[TrialSpec], workers: int, threads: int,
                 on_done: Callable[[dict], None] | None, address: str | None) -> list[dict]:
    ray = _import_ray()
    from .config import ConfigError
    started_here = not ray.is_initialized()  # a caller (a test, a notebook) may have connected already
    if started_here:
        try:
            if address is None:
                ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
            else:  # ship this package to the cluster's workers: they need only the dependencies installed
                ray.init(address=address, log_to_driver=False,
                         runtime_env={"py_modules": [str(Path(__file__).parent)]})
        except Exception as err:  # Ray raises ConnectionError, ValueError, RuntimeError, ... here
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"--executor ray{f' --address {address}' if address else ''}: cannot start "
                              f"or join Ray ({first_line})") from None
    remote = ray.remote(_ray_trial)
    refs = [remote.options(num_cpus=threads, num_gpus=1 if spec.device.startswith("cuda") else 0)
            .remote(spec, threads) for spec in specs]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[dict | None] = [None] * len(specs)
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayTaskError as err:
                raise (err.cause if isinstance(err.cause, Exception) else err) from None
            results[index[done[0]]] = result
            if on_done:
                on_done(result)
    finally:
        for ref in pending:  # on Ctrl-C or an error: finished trials are already saved
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
    return results
