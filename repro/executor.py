"""Runs independent trials: in this process, or spread over the machine's cores.

Each worker process uses one intra-op thread. Measured on the 2-core development machine, a
784-100x4-10 step took 1.1 ms with one thread, but 50 ms with two threads while another process
was busy: oversubscribed OpenMP threads spin against each other. So the suite parallelises over
trials (one process per core, one thread each), never inside a small matmul. Because every trial
is a pure function of (config, seed) on one thread, the results do not depend on how many
workers ran them, nor on which executor did: ``local`` (this machine's cores) or ``ray`` (one Ray
task per trial, on a local Ray instance or a cluster; the optional extra ``pip install -e '.[ray]'``).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch


@dataclass
class TrialSpec:
    config: dict                     # TrialConfig fields
    seed: int
    device: str
    logdir: str | None = None        # the trial's own TensorBoard directory
    hparams: dict = field(default_factory=dict)   # extra columns for the hparams table (variant, ...)
    tag: object = None               # opaque label handed back with the result
    keep_state: bool = False         # hand back the trained weights (CPU state_dict) as result["state"]


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


def run_trial(spec: TrialSpec, progress: Callable[[int], None] | None = None) -> dict:
    from .config import TrialConfig, validate
    from .nets import takes_flat_input
    from .tb import TrialWriter
    from .train import train
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.config.items()}
    cfg = validate(TrialConfig(**values))
    data = _dataset(cfg.dataset, spec.device, takes_flat_input(cfg))
    if spec.logdir:  # a rerun (or resume) replaces what a killed attempt left, never adds a copy
        shutil.rmtree(spec.logdir, ignore_errors=True)
    writer = TrialWriter(Path(spec.logdir), spec.hparams) if spec.logdir else None
    result = train(cfg, spec.seed, data, writer=writer, progress=progress, keep_state=spec.keep_state)
    result["tag"] = spec.tag
    return result


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


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
    if executor == "ray":
        return _execute_ray(specs, workers, threads, on_done, address)
    results: list[dict | None] = [None] * len(specs)
    if workers <= 1 or len(specs) <= 1:
        torch.set_num_threads(threads)
        for i, spec in enumerate(specs):
            results[i] = run_trial(spec, step_progress)
            if on_done:
                on_done(results[i])
        return results
    # spawn, not fork: forking a process whose OpenMP pool already started can deadlock
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(min(workers, len(specs)), initializer=_init_worker, initargs=(threads,))
    try:
        for i, result in pool.imap_unordered(_run_indexed, list(enumerate(specs))):
            results[i] = result
            if on_done:
                on_done(result)
        pool.close()
    finally:
        pool.terminate()  # on Ctrl-C or an error: stop the workers now; finished trials are already saved
        pool.join()
    return results


def _run_indexed(item: tuple[int, TrialSpec]) -> tuple[int, dict]:
    return item[0], run_trial(item[1])


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
