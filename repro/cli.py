"""`python -m repro ...`: list experiments, run one, re-check them under other setups, profile your own components, train a single trial, sweep a grid, write the report, fetch data.

Every user mistake ends in one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from .metrics import rankable
    p = argparse.ArgumentParser(prog="python -m repro", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="experiments and their presets")

    run = sub.add_parser("run", help="run an experiment: variants x seeds, claims, results JSON, TensorBoard")
    run.add_argument("experiment", help="experiment name (see 'list')")
    run.add_argument("--preset", default="full", help="preset name (default: full; 'quick' for a fast check)")
    _run_args(run, "results directory (default: results)")

    gen = sub.add_parser("generalise", help="every experiment's phenomenon claims under other setups: "
                         "Fashion-MNIST, widths x2, batch size halved and doubled, fresh seeds")
    gen.add_argument("--preset", default="quick", help="each experiment's preset (default: quick)")
    gen.add_argument("--conditions", default=None,
                     help="comma-separated, from: reference, fashion-mnist, widths-x2, batch-half, batch-double, "
                          "fresh-seeds (default: all)")
    gen.add_argument("--experiments", default=None, help="comma-separated experiment names (default: all)")
    _run_args(gen, "results directory: writes <results>/generalise/ (default: results)")

    prof = sub.add_parser("profile", help="put components through the phenomena of their kind, beside the notes' "
                          "own, and print a scorecard of verdicts")
    for kind, text in PROFILE_KINDS.items():
        prof.add_argument(f"--{kind}", action="append", default=[], metavar="NAME[,NAME...]",
                          help=text + " (repeatable, or comma-separated; your own as module:attribute)")
    prof.add_argument("--preset", default="quick", help="quick (default) or full")
    _run_args(prof, "results directory: writes <results>/profile/<kind>/<preset>.json (default: results)")

    train = sub.add_parser("train", help="train one MLP from config keys; prints its final metrics as JSON")
    train.add_argument("--seed", type=int, default=0, help="seed for weights and batch order (default: 0)")
    _common(train)

    sweep = sub.add_parser("sweep", help="train every cell of config grids x seeds; per-cell statistics, best cells")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="values of one config key to sweep, e.g. --grid lr=0.001,0.01,0.1 (repeatable: the "
                            "cells are the cross product); tuple keys take '|' between values: widths=100,100|50,50")
    sweep.add_argument("--seeds", type=int, default=3, help="seeds per cell: 0..N-1 (default: 3)")
    sweep.add_argument("--metric", default="final_test_acc",
                       help="sort the table by this trial metric (default: final_test_acc; any of "
                            + ", ".join(rankable()) + "; post_update_loss is the book's statistic, with --set "
                            "post_loss_every=100)")
    sweep.add_argument("--name", default=None,
                       help="results/sweeps/<name>.json and runs/sweeps/<name>/ (default: derived from the grid)")
    _common(sweep)
    sweep.add_argument("--workers", type=int, default=None,
                       help="local: trials in parallel, one process each (default: CPU cores; 1 on CUDA); "
                            "ray without --address: CPUs of the local Ray instance")
    sweep.add_argument("--results", type=Path, default=Path("results"),
                       help="results directory (default: results)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bars")
    sweep.add_argument("--resume", action="store_true",
                       help="keep the trials an interrupted sweep already finished and train only the rest")
    _executor_args(sweep)

    blocks = sub.add_parser("blocks", help="a many-seed run's claims re-judged on blocks of its seeds (where test "
                            "thresholds come from)")
    blocks.add_argument("results_file", type=Path, help="results/<experiment>/<preset>.json of a run with --seeds 10")
    blocks.add_argument("--size", type=int, default=2, help="seeds per block, as the test runs them (default: 2)")

    report = sub.add_parser("report", help="results JSON -> reports/REPORT.md and figures (never re-trains)")
    report.add_argument("--results", type=Path, default=Path("results"), help="results directory (default: results)")
    report.add_argument("--out", type=Path, default=Path("reports"),
                        help="where REPORT.md and figures/ go (default: reports)")
    report.add_argument("--preset", default=None,
                        help="report this preset of every experiment (default: each experiment's newest results)")

    bench = sub.add_parser("bench", help="where the time goes: engine vs DataLoader vs NumPy, telemetry, cores")
    bench.add_argument("--steps", type=int, default=500, help="training steps per timing (default: 500)")
    bench.add_argument("--repeats", type=int, default=7, help="timings per figure; the median is kept (default: 7)")
    bench.add_argument("--results", type=Path, default=Path("results"), help="writes <results>/bench.json")
    bench.add_argument("--device", default="cpu",
                       help="cpu (default: every figure) or cuda (the engine, its matmuls, DeepConvNet and batched "
                            "seeds on the GPU); writes <results>/bench.json or bench-cuda.json")

    data = sub.add_parser("data", help="fetch and verify a dataset into $REPRO_DATA (default ~/.cache/dl-repro)")
    data.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (default: mnist)")
    return p


# what `repro profile` probes for each kind (experiments/profile/<kind>.py), in the order it runs them
PROFILE_KINDS = {
    "activation": "activations beside sigmoid, tanh and ReLU: gradient through depth, spread at init, accuracy "
                  "after a budget (e.g. gelu, silu, elu, leaky_relu)",
    "init": "inits beside N(0, 0.01), Xavier and He: the signal through 30 ReLU layers at init, trains or stalls "
            "at depth 30 (e.g. orthogonal, default)",
    "norm": "normalisers beside none and batch norm: the band of weight scales that train, steps to 90%% "
            "(e.g. layernorm, rmsnorm)",
    "optimizer": "optimizers beside SGD, Momentum, AdaGrad and Adam: the 2-D valley, the book's MNIST setup, the "
                 "usable band of learning rates (e.g. adamw, nadam, radam, lion)",
    "regulariser": "regularisers beside none, L2 0.1 and dropout 0.3 on 300 images: the train-test gap and its "
                   "cost in test accuracy (l2:<lambda>, l1:<lambda>, dropout:<p>, max_norm:<c>, or your penalty)",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key or experiment parameter, e.g. --set lr=0.05 (repeatable)")
    p.add_argument("--logdir", type=Path, default=Path("runs"), help="TensorBoard root (default: runs)")
    p.add_argument("--deterministic", action="store_true",
                   help="CUDA: deterministic kernels only, in every worker (slower; CPU runs are deterministic already)")
    p.add_argument("--tf32", action="store_true",
                   help="CUDA: allow TF32 in matmuls and convolutions (faster CNNs; numbers then differ from the "
                        "CPU's beyond float32 rounding; default: off)")


def _run_args(p: argparse.ArgumentParser, results_help: str) -> None:
    """What running an experiment takes, for `run` and `generalise` alike."""
    p.add_argument("--seeds", type=int, default=None, help="seeds per variant (default: the preset's)")
    _common(p)
    p.add_argument("--workers", type=int, default=None,
                   help="trials run in parallel, one process each (default: CPU cores; 1 on CUDA)")
    p.add_argument("--results", type=Path, default=Path("results"), help=results_help)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="keep the trials an interrupted run already finished and train only the rest")
    _executor_args(p)


def _executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: this machine's cores (default); ray: one Ray task per trial "
                        "(pip install -e '.[ray]')")
    p.add_argument("--address", default=None,
                   help="with --executor ray: join this Ray cluster ('auto' or host:port; default: start a "
                        "local Ray instance)")


def cmd_list(args) -> None:
    from .runner import experiment_names, load_experiment
    from .tables import plural
    for name in experiment_names():
        module = load_experiment(name)
        presets = ", ".join(f"{k} ({plural(v.get('seeds', 3), 'seed')})" for k, v in module.PRESETS.items())
        print(f"{name:16s} {getattr(module, 'TITLE', '')}\n{'':16s} presets: {presets}")


def cmd_run(args) -> None:
    from .config import parse_sets
    from .runner import run_experiment, summary_table
    results = run_experiment(args.experiment, args.preset, seeds=args.seeds, device=args.device,
                             sets=parse_sets(args.set), layout=_layout(args), workers=args.workers,
                             progress=not args.quiet, resume=args.resume, executor=args.executor,
                             address=args.address)
    print(summary_table(results))


def _layout(args):
    from .layout import Layout
    return Layout(args.results, args.logdir)


def cmd_generalise(args) -> None:
    from . import generalise
    from .config import parse_sets
    conditions = generalise.parse_conditions(args.conditions)
    experiments = generalise.parse_experiments(args.experiments)
    layout = _layout(args)
    matrix = generalise.run(args.preset, conditions, experiments, seeds=args.seeds, device=args.device,
                            layout=layout, workers=args.workers, progress=not args.quiet, resume=args.resume,
                            executor=args.executor, address=args.address, sets=parse_sets(args.set),
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    print(generalise.matrix_table(matrix))
    print(f"\n{layout.matrix_file(args.preset)} in {matrix['wall_time']:.0f} s")
    if matrix["errors"]:
        raise SystemExit(1)


def cmd_profile(args) -> None:
    from . import profiles
    from .config import parse_sets
    components = {kind: getattr(args, kind) for kind in PROFILE_KINDS if getattr(args, kind)}
    runs = profiles.run(components, args.preset, seeds=args.seeds, device=args.device, sets=parse_sets(args.set),
                       layout=_layout(args), workers=args.workers, progress=not args.quiet, resume=args.resume,
                       executor=args.executor, address=args.address,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    print("\n\n".join(profiles.scorecard_text(run) for run in runs.values()))


def cmd_sweep(args) -> None:
    from .config import parse_sets
    from .sweep import parse_grid, run_sweep, sweep_table
    sets = parse_sets(args.set)
    results = run_sweep(parse_grid(args.grid, sets), sets, args.seeds, args.device, args.name, args.metric,
                        _layout(args), args.workers, progress=not args.quiet, resume=args.resume,
                        executor=args.executor, address=args.address)
    print(sweep_table(results))


def cmd_train(args) -> None:
    import time

    from .config import TrialConfig, apply_overrides, parse_sets
    from .executor import TrialSpec, execute
    from .device import choose_device
    cfg = apply_overrides(TrialConfig(), parse_sets(args.set))
    device, _ = choose_device(args.device, [cfg], trials=1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    spec = TrialSpec(cfg, args.seed, device, str(args.logdir / "train" / f"{stamp}-{cfg.key(args.seed, device)}"))
    (result,) = execute([spec], workers=1)  # one intra-op thread, as every trial of a run: the same numbers
    # every TRIAL metric of repro/metrics.py (post_update_loss: null unless post_loss_every is set)
    print(json.dumps({"status": result["status"], "diverged_at": result["diverged_at"], **result["summary"],
                      "wall_time": round(result["wall_time"], 3), "logdir": spec.logdir}))


def cmd_blocks(args) -> None:
    from .blocks import blocks_table
    print(blocks_table(args.results_file, args.size))


def cmd_report(args) -> None:
    from .config import ConfigError
    from .claims import count_text
    from .errors import ReproError
    from .report import build_report
    from .layout import Layout
    try:
        summary = build_report(Layout(args.results), args.out, args.preset)
    except OSError as err:
        raise ConfigError(f"cannot write the report to {args.out} ({err.strerror})") from None
    print(f"{summary.path}: {len(summary.run)} of {len(summary.entries)} experiments run; "
          f"{count_text(summary.claims)}")
    for name, claim in summary.failing:
        print(f"  [FAILS] {name}: {claim.statement}")
    if summary.unreadable:  # the report is written, every damaged file named in it; the exit says so too
        raise ReproError("; ".join(entry.problem for entry in summary.unreadable))


def cmd_bench(args) -> None:
    from .bench import format_report, run
    from .device import resolve_device
    from .store import write_json
    device = resolve_device(args.device)
    report = run(args.steps, args.repeats, device=device)
    path = args.results / ("bench.json" if device == "cpu" else "bench-cuda.json")
    write_json(path, report)
    print(format_report(report))
    print(f"written to {path}")


def cmd_data(args) -> None:
    from .data import ensure, verify
    folder = ensure(args.dataset, log=lambda m: print(m, file=sys.stderr))
    verify(args.dataset)
    print(f"{args.dataset}: 4 files verified in {folder}")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, as Ctrl-C's KeyboardInterrupt is: the same cleanup
    runs (the pool stopped, the lock released, no half-written file left)."""


def _stop(signum, frame) -> None:
    for sig in STOP_SIGNALS:  # a second one (a scheduler repeating itself) must not interrupt the cleanup
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    from .numerics import Numerics, set_policy
    from .errors import ReproError
    args = _parser().parse_args(argv)
    handlers = {"list": cmd_list, "run": cmd_run, "generalise": cmd_generalise, "profile": cmd_profile,
                "train": cmd_train, "sweep": cmd_sweep, "report": cmd_report,
                "blocks": cmd_blocks,
                "data": cmd_data, "bench": cmd_bench}
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        # at the edge, once: every TrialSpec made from here on carries this policy to its worker
        set_policy(Numerics(getattr(args, "deterministic", False), getattr(args, "tf32", False)))
        handlers[args.command](args)
    except ReproError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        signum = err.args[0] if isinstance(err, Stopped) else signal.SIGINT
        resume = "; the finished trials are saved: the same command with --resume goes on" if hasattr(args, "resume") else ""
        print(f"interrupted ({signal.Signals(signum).name}){resume}", file=sys.stderr)
        return 128 + signum
    finally:
        for sig, handler in previous.items():  # main() called from Python (a test) leaves them as they were
            signal.signal(sig, handler)
    return 0
