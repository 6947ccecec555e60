"""`make device-check CARRY=<folder>`: the suite proven on one CUDA GPU in one command, in six minutes.

Run from the repository root of a plain checkout with the GPU machine's own python3 (torch,
tensorboard, numpy, matplotlib, tqdm, pytest; no venv, no network). What such a machine lacks comes
from the carry folder (`make device-carry` prepares it): MNIST's four files gzipped in
``<carry>/MNIST/raw/`` (REPRO_DATA points there) and a scipy wheel for CPython 3.12, installed into a
temporary folder only if python3 has no scipy. Then, in this order:

1. every optimiser takes steps on the device (which kernel: fused or foreach);
2. the device tests (tests/test_device.py: CUDA float32 against the CPU, deterministic mode, ...);
3. on the still idle machine: `repro bench` on the device beside the same machine's CPU, and the
   --device auto rule measured on each experiment's quick preset (repro.device);
4. every experiment's quick preset and one full preset (optimizers) on the device, as subprocesses,
   several at once, each with a timeout; each one's time, claims and failures.

One JSON of figures goes to --out (device-check.json; device-check-cpu.json for the dry run), written
after every step so that a killed check leaves what it measured; a short table is printed last.
Near the end of the budget the remaining steps are skipped, each saying so. ``--device cpu`` is the
dry run of the same script on a machine without a GPU (`make device-check DEVICE=cpu`).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FULL_PRESET = "optimizers"      # the one full preset: 99 trials of the book network, 3 seeds
FULL_WORKERS = 3
RUN_SHARE = 2 / 3               # one experiment run is stopped after this share of the budget (240 s of 360)
BENCH_NEEDS = 60                # seconds step 3 needs; with less left it is skipped
MIN_RUN = 20                    # no experiment run starts with less than this left
RESERVE = 10                    # seconds kept at the end for the JSON and the table


class Check:
    """The budget, the figures so far and where they go."""

    def __init__(self, device: str, out: Path, budget: float):
        self.device, self.budget, self.started = device, budget, time.monotonic()
        self.deadline = self.started + budget
        self.path = out / ("device-check.json" if device.startswith("cuda") else f"device-check-{device}.json")
        self.figures: dict = {"device": device, "budget_s": budget, "steps": {}}

    def left(self) -> float:
        return self.deadline - RESERVE - time.monotonic()

    def step(self, name: str, needs: float, run) -> None:
        """Run one step if ``needs`` seconds are left, recording its figures, its time or why not."""
        if self.left() < needs:
            self.figures["steps"][name] = {"skipped": f"{self.left():.0f} s of the budget left, needs {needs:.0f}"}
        else:
            started = time.monotonic()
            try:
                record = run()
            except Exception as err:  # one step's failure is a finding; the next steps still run
                record = {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"}
            self.figures["steps"][name] = {**record, "seconds": round(time.monotonic() - started, 1)}
        self.save()

    def save(self) -> None:
        from .store import write_json
        self.figures["seconds"] = round(time.monotonic() - self.started, 1)
        write_json(self.path, self.figures)


def prepare(carry: Path) -> dict:
    """scipy (from the carry folder's wheel if python3 lacks it) and MNIST (REPRO_DATA = the carry folder)."""
    record = {"python": platform.python_version()}
    if importlib.util.find_spec("scipy") is None:
        wheels = sorted(glob.glob(str(carry / "*.whl")))
        if not wheels:
            raise FileNotFoundError(f"no scipy here and no wheel in {carry}: run make device-carry")
        site = tempfile.mkdtemp(prefix="repro-site-")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target", site,
                        *wheels], check=True, capture_output=True, timeout=120)
        sys.path.insert(0, site)
        os.environ["PYTHONPATH"] = os.pathsep.join([site, *filter(None, [os.environ.get("PYTHONPATH")])])
        record["scipy"] = f"installed from {', '.join(Path(w).name for w in wheels)}"
    else:
        record["scipy"] = "present"
    import scipy
    import torch
    record |= {"scipy_version": scipy.__version__, "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
               "cpus": len(os.sched_getaffinity(0))}
    os.environ["REPRO_DATA"] = str(carry.resolve())
    from .data import verify
    verify("mnist")
    record["mnist"] = f"verified in {carry / 'MNIST' / 'raw'}"
    return record


def optimizer_steps(device: str) -> dict:
    """Three steps of every optimiser on the book network on ``device``: finite, moved, which kernel."""
    import torch
    import torch.nn.functional as F

    from .components import OPTIMIZERS
    from .config import TrialConfig
    from .engine import seeded_generators
    from .nets import build_model
    from .optim import make_optimizer
    out = {}
    for name in OPTIMIZERS:
        cfg = TrialConfig(optimizer=name, lr=1.0 if name == "adadelta" else 0.01)
        try:
            model = build_model(cfg, generator=seeded_generators(0)[1]).to(device)
            opt = make_optimizer(model, cfg)
            before = [p.detach().clone() for p in model.parameters()]
            x, y = torch.rand(128, 784, device=device), torch.randint(10, (128,), device=device)
            for _ in range(3):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            params = list(model.parameters())
            group = opt.param_groups[0]
            out[name] = {"ok": all(bool(torch.isfinite(p).all()) for p in params)
                         and any(not torch.equal(p, b) for p, b in zip(params, before)),
                         "kernel": "fused" if group.get("fused") else "foreach" if group.get("foreach") else "for-loop"}
        except Exception as err:
            out[name] = {"ok": False, "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    return {"optimizers": out, "all_step": all(r["ok"] for r in out.values())}


def device_tests(timeout: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_device.py"],
                          capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    return {"exit_status": proc.returncode, "summary": lines[-1] if lines else proc.stderr.strip()[-300:],
            "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
            "output_tail": lines[-80:] if proc.returncode else []}


def bench_and_auto(device: str, check: Check) -> dict:
    """`repro bench` on the device and on this machine's CPU (short: 200 steps, 3 rounds, no cores
    comparison), then --device auto's measurements on each experiment's quick preset."""
    from . import bench
    from .device import measured_choice
    from .runner import build_variants, experiment_names, load_experiment, resolve
    out = {"bench": {}}
    for where in dict.fromkeys([device, "cpu"]):
        report = bench.run(steps=200, repeats=3, experiment=None, device=where)
        out["bench"][where] = {"report": report, "text": bench.format_report(report)}
    out["auto"] = {}
    for name in experiment_names():
        if check.left() < MIN_RUN + BENCH_NEEDS:  # leave the experiments their share
            out["auto"][name] = {"skipped": "budget"}
            continue
        module = load_experiment(name)
        params, forced = resolve(module, "quick", {})
        variants = build_variants(module, params, forced)
        if not variants:
            continue
        chosen, why = measured_choice([v.config for v in variants], len(variants) * params.get("seeds", 3), gpu=device)
        out["auto"][name] = why
    return out


def experiment_order() -> list[tuple[str, str]]:
    """(experiment, preset): the full preset first (the longest), the papers, the rest, the audit last
    (it reads the others' results)."""
    from .runner import experiment_names, paper_of
    names = experiment_names()
    papers = [n for n in names if paper_of(n)]
    rest = [n for n in names if n not in papers and n != "claims_audit"]
    return [(FULL_PRESET, "full"), *((n, "quick") for n in papers + rest), ("claims_audit", "quick")]


def run_experiments(device: str, check: Check, folder: Path, parallel: int) -> dict:
    """Every quick preset and the one full preset; the audit last, since it reads the others' results."""
    order = experiment_order()
    out = run_queue(device, check, folder, parallel, order[:-1], "experiments")
    out.update(run_queue(device, check, folder, parallel, order[-1:], "experiments"))
    return {"runs": out, "parallel": parallel}


def run_queue(device: str, check: Check, folder: Path, parallel: int, queue: list, step: str,
              judged: bool = False) -> dict:
    """Each (experiment, preset) as `python -m repro run` in its own process, ``parallel`` at once, each
    stopped at its timeout (RUN_SHARE of the budget, or what is left of it); then its claims (with
    ``judged``, its reference rows and claim lines too), read from its results file. Each record also
    says when the run ended, counted from the queue's start."""
    queue, running, out, began = list(queue), {}, {}, time.monotonic()
    while queue or running:
        while queue and len(running) < parallel:
            name, preset = queue.pop(0)
            if check.left() < MIN_RUN:
                out[f"{name}/{preset}"] = {"skipped": f"{check.left():.0f} s of the budget left"}
                continue
            log = open(folder / f"{name}-{preset}.log", "w")
            cmd = [sys.executable, "-m", "repro", "run", name, "--preset", preset, "--device", device, "--quiet",
                   "--results", str(folder / "results"), "--logdir", str(folder / "runs"),
                   # a long preset's trials (seed groups on CUDA) over FULL_WORKERS processes sharing the device
                   *(["--workers", str(FULL_WORKERS)] if preset != "quick" else [])]
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
            running[(name, preset)] = (proc, time.monotonic(), min(RUN_SHARE * check.budget, check.left()), log)
        time.sleep(0.5)
        for (name, preset), (proc, started, limit, log) in list(running.items()):
            seconds = time.monotonic() - started
            if proc.poll() is None and seconds < limit:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            del running[(name, preset)]
            record = _run_record(folder, name, preset, proc.returncode, seconds, limit)
            if judged and "claims" in record:
                record |= _judged(folder / "results" / name / f"{preset}.json")
            out[f"{name}/{preset}"] = {**record, "ended_at_s": round(time.monotonic() - began, 1)}
            check.figures["steps"].setdefault(step, {})["runs"] = {**check.figures["steps"].get(step, {}).get(
                "runs", {}), **out}
            check.save()
    return out


def _run_record(folder: Path, name: str, preset: str, status: int, seconds: float, limit: float) -> dict:
    from .claims import FAILS, NOT_JUDGED, verdict
    from .results import load
    record = {"seconds": round(seconds, 1)}
    if status != 0:
        tail = (folder / f"{name}-{preset}.log").read_text().strip().splitlines()
        record["error"] = f"stopped at its {limit:.0f} s limit" if seconds >= limit else \
            f"exit {status}: {tail[-1] if tail else ''}"
        record["log_tail"] = tail[-20:]
        return record
    run = load(folder / "results" / name / f"{preset}.json")
    record |= {"trials": len(run.trials), "device": run.env["device"],
               "claims": len(run.claims), "holds": sum(verdict(c) not in (FAILS, NOT_JUDGED) for c in run.claims),
               "not_judged": sum(verdict(c) == NOT_JUDGED for c in run.claims),
               "fails": [f"{c.id}: measured {c.measured:.4g} ({c.bound})" for c in run.claims if verdict(c) == FAILS],
               "trial_seconds": round(sum(t.wall_time for t in run.trials), 1)}
    return record


TARGET_RUNS = [(n, "full") for n in ("vanishing", "init", "batchnorm", "optimizers", "regularization")] + \
    [(n, "cpu") for n in ("glorot2010", "he2015", "ioffe2015", "kingma2015", "srivastava2014", "sutskever2013")]
EXTRA_RUNS = [("cnn", "full")]   # beyond the target: the book's SimpleConvNet at its own length


def targets(device: str, check: Check, folder: Path, parallel: int) -> dict:
    """Issue 32's target: every MLP experiment's full preset and the six papers' cpu presets on the device,
    ``parallel`` runs at once, timed from the first start to the last end; then cnn's full preset. Each
    run's claims, and every reference row it could judge (its per-seed values and the verdict), so that the
    verdicts of the full presets can be read without the results files (which stay on the machine)."""
    out = run_queue(device, check, folder, parallel, TARGET_RUNS + EXTRA_RUNS, "targets", judged=True)
    target = [out.get(f"{n}/{p}", {}) for n, p in TARGET_RUNS]
    done = all("claims" in r for r in target)
    return {"runs": out, "parallel": parallel,
            "target_seconds": max(r["ended_at_s"] for r in target) if done else None,
            "target": "every MLP full preset and the six papers' cpu presets" + ("" if done else ": not all finished")}


def _judged(path: Path) -> dict:
    """A run's reference rows (each variant's per-seed values and the verdict) and its claims as printed."""
    from .claims import verdict
    from .results import load
    from .uncertainty import claim_text
    run = load(path)
    rows = []
    for v in run.variants.values():
        ref, text, comparable = v.reference_status()
        if ref is not None:
            rows.append({"variant": v.id, "label": v.label, "metric": ref.metric, "low": ref.low, "high": ref.high,
                         "source": ref.source, "values": v.values(ref.metric),
                         "verdict": v.reference_verdict().text() if comparable else f"no verdict: {text}"})
    return {"references": rows, "claim_lines": [f"[{verdict(c)}] {c.id}: {claim_text(c)}" for c in run.claims],
            "seeds": run.seeds}


def table(figures: dict) -> str:
    """The short table printed last."""
    steps = figures["steps"]
    lines = [f"device check on {figures['device']}: {figures['seconds']:.0f} s of {figures['budget_s']:.0f}"]

    def why_not(record: dict) -> str:
        return record.get("skipped") or record.get("error") or "?"

    env = steps.get("environment", {})
    lines.append(f"  environment   {env.get('gpu') or 'no GPU'}, torch {env.get('torch')}, python {env.get('python')}, "
                 f"{env.get('cpus')} cpus, scipy {env.get('scipy_version')} ({env.get('scipy')})" if "torch" in env
                 else f"  environment   {why_not(env)}")
    opt = steps.get("optimizers", {})
    if "optimizers" in steps:
        lines.append(f"  optimizers    {'all step' if opt['all_step'] else 'NOT ALL STEP'}: "
                     + ", ".join(f"{n} {r.get('kernel') if r['ok'] else 'FAILED ' + r.get('error', '')}"
                                 for n, r in opt["optimizers"].items()) if "optimizers" in opt
                     else f"  optimizers    {why_not(opt)}")
    tests = steps.get("device tests", {})
    if "device tests" in steps:
        lines.append(f"  device tests  {tests.get('summary') or why_not(tests)}")
        lines += [f"    {failure}" for failure in tests.get("failures", [])]
    measured = steps.get("bench and auto", {})
    if "bench and auto" in steps and "bench" not in measured:
        lines.append(f"  bench, auto   {why_not(measured)}")
    for where, b in measured.get("bench", {}).items():
        r = b["report"]
        convnet = r["choices_ms_per_step"].get("DeepConvNet step", r["choices_ms_per_step"].get("DeepConvNet step, channels-last"))
        lines.append(f"  bench {where:7s} engine step {r['engine_ms_per_step']:.3f} ms, DeepConvNet step {convnet:.1f} ms")
        lines.append(f"  {'':13s} {seeds_text(r)}")
    for name, why in measured.get("auto", {}).items():
        lines.append(f"  auto {name:16s} {why['chosen']}: cpu {why['cpu_ms_per_step']:.2f} ms x {why['cpu_workers']} "
                     f"workers vs gpu {why['cuda_ms_per_step']:.2f} ms ({why['measured_on']})" if "chosen" in why
                     else f"  auto {name:16s} {why_not(why)}")
    runs = {**steps.get("experiments", {}).get("runs", {}), **steps.get("targets", {}).get("runs", {})}
    if steps.get("targets", {}).get("target_seconds") is not None:
        lines.append(f"  target: {steps['targets']['target']} in {steps['targets']['target_seconds']:.0f} s")
    for run, r in runs.items():
        if "claims" not in r:
            lines.append(f"  {run:26s} {why_not(r)}")
            continue
        judged = f", {r['not_judged']} not judged" if r["not_judged"] else ""
        fails = f"; FAILS {', '.join(r['fails'])}" if r["fails"] else ""
        lines.append(f"  {run:26s} {r['seconds']:6.1f} s {r['trials']:4d} trials, {r['holds']}/{r['claims']} claims "
                     f"hold{judged}{fails}")
    return "\n".join(lines)


def seeds_text(report: dict) -> str:
    from .bench import seeds_line
    return " ".join(seeds_line(report["seeds"]).split())  # one space between words: the table's own columns


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m repro.devicecheck", description=__doc__.splitlines()[0])
    p.add_argument("--carry", type=Path, required=True, help="the folder make device-carry prepared")
    p.add_argument("--out", type=Path, default=Path("results"), help="where the JSON goes (default: results)")
    p.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run without a GPU")
    p.add_argument("--budget", type=float, default=360, help="seconds for everything (default: 360)")
    p.add_argument("--targets", action="store_true",
                   help="instead: the MLP experiments' full presets, the papers' cpu presets and cnn's full preset "
                        "(issue 32's target), several at once, each with its claims and reference verdicts")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.device, args.out, args.budget)
    work = Path(tempfile.mkdtemp(prefix="repro-device-check-"))
    parallel = max(1, min(6, len(os.sched_getaffinity(0)) // 2))
    if args.targets:
        check.path = check.path.with_name(check.path.stem + "-targets.json")
        check.step("environment", 0, lambda: prepare(args.carry))
        check.step("targets", MIN_RUN, lambda: targets(args.device, check, work, parallel))
        print(table(check.figures))
        print(f"\nfigures: {check.path}; run outputs: {work}")
        return 0
    check.step("environment", 0, lambda: prepare(args.carry))
    check.step("optimizers", 5, lambda: optimizer_steps(args.device))
    check.step("device tests", 30, lambda: device_tests(timeout=max(check.left() - BENCH_NEEDS - MIN_RUN, 30)))
    check.step("bench and auto", BENCH_NEEDS + MIN_RUN, lambda: bench_and_auto(args.device, check))
    check.step("experiments", MIN_RUN, lambda: run_experiments(args.device, check, work, parallel))
    check.save()
    print(table(check.figures))
    print(f"\nfigures: {check.path}; run outputs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
