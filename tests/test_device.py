"""Devices: every optimiser steps on every device this machine has, device names, the numerics policy
in every worker, the device in the --resume key, --device auto's rule; and, on a machine with a CUDA
GPU, CUDA float32 against the CPU (make device-check runs this file there; here those tests skip)."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import random_dataset

from repro import device as devices
from repro import optim
from repro.components import OPTIMIZERS
from repro.config import ConfigError, TrialConfig
from repro.device import choose_device, faster_device, resolve_device
from repro.numerics import Numerics, set_policy
from repro.engine import seeded_generators, train
from repro.executor import TrialSpec, execute
from repro.nets import build_model
from repro.store import TrialStore

NO_CUDA = "no CUDA GPU on this machine (make device-check runs these on one)"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
TINY = TrialConfig(widths=(20, 20), iters=30, eval_every=30, test_size=100, train_eval_size=100, probe_size=100)


@pytest.fixture(autouse=True)
def default_numerics():
    """Each test starts and ends with the default policy and no cuBLAS setting (a test may apply
    another policy in this process, which sets it)."""
    before = os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    set_policy(Numerics())
    yield
    set_policy(Numerics())
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    if before is not None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = before


def _as_images(data):
    """random_dataset's flat 784-pixel images as 1 x 28 x 28, for the CNNs."""
    return type(data)(data.x_train.view(-1, 1, 28, 28), data.y_train, data.x_test.view(-1, 1, 28, 28), data.y_test)


def _steps(cfg: TrialConfig, device: str, steps: int = 3) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    """``steps`` updates of the book-sized MLP under cfg's optimiser on ``device``; the weights before."""
    model = build_model(cfg, generator=seeded_generators(0)[1]).to(device)
    opt = optim.make_optimizer(model, cfg)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.rand(32, 784, device=device), torch.randint(10, (32,), device=device)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return opt, before


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_steps_on_every_device(name, device):
    cfg = TrialConfig(optimizer=name, lr=1.0 if name == "adadelta" else 0.01)
    opt, before = _steps(cfg, device)
    after = [p for group in opt.param_groups for p in group["params"]]
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))


def test_without_a_fused_kernel_the_optimizers_fall_back_to_foreach_and_step(monkeypatch):
    # torch checks fused support at the first step, against this list: leave the CPU out of it, as a
    # device with no fused kernel looks (before the fix, SGD, Momentum, Nesterov, AdaGrad and Adam
    # all raised at step 1 here)
    from torch.optim import optimizer as torch_optimizer
    supported = torch_optimizer._get_fused_kernels_supported_devices()
    monkeypatch.setattr(torch_optimizer, "_get_fused_kernels_supported_devices",
                        lambda: [d for d in supported if d != "cpu"])
    optim.has_fused_step.cache_clear()
    try:
        for name, spec in OPTIMIZERS.items():
            opt, before = _steps(TrialConfig(optimizer=name, lr=1.0 if name == "adadelta" else 0.01), "cpu")
            assert all(not g.get("fused") for g in opt.param_groups), name
            assert spec.kernel != "fused" or all(g["foreach"] for g in opt.param_groups), name
            after = [p for group in opt.param_groups for p in group["params"]]
            assert any(not torch.equal(a, b) for a, b in zip(after, before)), name
    finally:
        optim.has_fused_step.cache_clear()  # the next test probes the real torch again


def test_where_torch_has_fused_kernels_they_are_used():
    opt, _ = _steps(TrialConfig(optimizer="adam", lr=0.001), "cpu", steps=1)
    assert all(g["fused"] for g in opt.param_groups)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "mps", "cuda:-1"])
def test_bad_device_names_are_one_line_errors(name):
    with pytest.raises(ConfigError, match=r"^--device .*: choose auto, cpu, cuda or cuda:<index>$"):
        resolve_device(name)


def test_a_gpu_index_the_machine_lacks_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"^--device cuda:7: this machine has 1 CUDA GPU \(cuda:0\)$"):
        resolve_device("cuda:7")
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device("cuda") == "cuda"


def test_bad_device_from_the_shell_is_one_line_and_exit_2():
    for name in ("cuda:x", "cuda:7", "gpu"):
        proc = subprocess.run([sys.executable, "-m", "repro", "train", "--device", name, "--set", "iters=1"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == "", name
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(f"error: --device {name}: "), proc.stderr


def test_numerics_reach_spawned_workers():
    # two trials over two workers: one runs in this process, the other in a spawned one, which
    # starts with torch's defaults unless the spec carries the policy
    policy = Numerics(deterministic=True, tf32=True)
    specs = [TrialSpec(TINY, seed, "cpu", numerics=policy) for seed in (0, 1)]
    for result in execute(specs, workers=2):
        assert result["numerics"] == {"deterministic": True, "tf32_matmul": True, "tf32_cudnn": True,
                                      "cublas_workspace_config": ":4096:8"}


def test_specs_carry_the_policy_set_at_the_edge_and_runs_record_it(tmp_path):
    from repro.cli import main
    assert TrialSpec(TINY, 0, "cpu").numerics == Numerics()  # default: TF32 off, not deterministic
    assert main(["sweep", "--grid", "lr=0.01,0.1", "--seeds", "1", "--device", "cpu", "--deterministic",
                 "--quiet", "--workers", "2", "--set", "widths=20", "--set", "iters=20", "--set", "eval_every=20",
                 "--set", "test_size=100", "--set", "train_eval_size=100", "--results", str(tmp_path),
                 "--logdir", str(tmp_path / "runs")]) == 0
    import json
    (path,) = (tmp_path / "sweeps").glob("*.json")
    results = json.loads(path.read_text())
    assert results["env"]["numerics"] == {"deterministic": True, "tf32": False, "cublas_workspace_config": ":4096:8"}
    assert results["env"]["device_choice"] == {"requested": "cpu", "chosen": "cpu", "rule": "as requested"}
    assert all(t["numerics"]["deterministic"] and not t["numerics"]["tf32_cudnn"] for t in results["trials"])


def test_deterministic_mode_leaves_cpu_numbers_unchanged():
    data = random_dataset()
    configs = [(TINY, data), (TINY.replace(optimizer="adam", lr=0.001, batchnorm=True, dropout=0.2), data),
               (TINY.replace(model="cnn", conv=("8", "pool")), _as_images(data))]
    plain = [train(cfg, 0, d)["batch_loss"] for cfg, d in configs]
    Numerics(deterministic=True).apply()
    assert [train(cfg, 0, d)["batch_loss"] for cfg, d in configs] == plain


def test_an_operation_without_a_deterministic_kernel_is_a_one_line_error(monkeypatch):
    from repro import engine
    from repro.executor import run_trial

    def refuse(*args, **kwargs):  # what torch raises for e.g. AdaptiveAvgPool2d's backward on CUDA
        raise RuntimeError("adaptive_avg_pool2d_backward_cuda does not have a deterministic implementation, "
                           "but you set 'torch.use_deterministic_algorithms(True)'.\nYou can turn off ...")
    monkeypatch.setattr(engine, "train", refuse)
    with pytest.raises(ConfigError, match=r"^--deterministic: adaptive_avg_pool2d_backward_cuda does not have a "
                                          r"deterministic implementation.*; run without it$"):
        run_trial(TrialSpec(TINY, 0, "cpu", numerics=Numerics(deterministic=True)))


def test_resume_matches_the_device(tmp_path):
    cpu_spec = TrialSpec(TINY, 0, "cpu")
    result = {**execute([cpu_spec], 1)[0], "tag": None}
    with TrialStore(tmp_path / "trials", "t", resume=False) as store:
        store.save(result)
    with TrialStore(tmp_path / "trials", "t", resume=True) as store:
        assert store.load(cpu_spec)["batch_loss"] == result["batch_loss"]
        assert store.load(TrialSpec(TINY, 0, "cuda")) is None  # a CPU trial never finishes a CUDA run


def test_auto_rule():
    # the CPU trains one trial per worker at once, the GPU one at a time
    assert faster_device(cpu_step=3e-3, cuda_step=0.5e-3, cpu_workers=2) == "cuda"
    assert faster_device(cpu_step=3e-3, cuda_step=0.5e-3, cpu_workers=16) == "cpu"
    assert faster_device(cpu_step=130e-3, cuda_step=2e-3, cpu_workers=16) == "cuda"


def test_auto_measures_both_devices_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    timed = []
    monkeypatch.setattr(devices, "step_seconds", lambda cfg, on: timed.append((cfg, on)) or [3e-3, 1e-3])
    cnn = TINY.replace(model="cnn", conv=("8", "pool"))
    chosen, why = choose_device("auto", [TINY, cnn], trials=10, workers=4)
    assert timed == [(cnn, ["cpu", "cuda"])]  # the costlier step stands for the run
    assert chosen == "cpu" and why["cpu_workers"] == 4 and why["cuda_ms_per_step"] == 1.0
    assert choose_device("auto", [TINY], trials=2, workers=4)[0] == "cuda"  # two trials: two CPU workers at most


def test_auto_without_a_gpu_is_the_cpu_and_measures_nothing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "step_seconds", lambda *a: pytest.fail("measured without a GPU"))
    assert choose_device("auto", [TINY], trials=4) == ("cpu", {"requested": "auto", "chosen": "cpu",
                                                             "rule": "auto: no CUDA GPU visible"})


def test_step_seconds_times_the_engine_on_the_cpu():
    seconds = devices.step_seconds(TINY.replace(train_size=500), ["cpu", "cpu"], rounds=1, budget=0.05)
    assert len(seconds) == 2 and all(math.isfinite(s) and s > 0 for s in seconds)


def test_a_network_described_in_a_few_characters():
    assert devices.describe(TrialConfig(widths=(100,) * 4, batch_size=128)) == "100x4, batch 128, sgd"
    assert devices.describe(TrialConfig(model="cnn", widths=(100,), optimizer="adam")) == \
        "conv 30x5p0,pool + 100, batch 100, adam"
    assert devices.describe(TrialConfig(widths=())) == "no hidden layer, batch 100, sgd"


# ---- on a CUDA GPU (make device-check) ----

@needs_cuda
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_cuda_float32_matches_the_cpu_within_rounding(model):
    # TF32 off (the default policy): the logits of the same weights on the same batch agree to float32
    # rounding, ||cuda - cpu|| / ||cpu|| about 1e-7; TF32 (a 10-bit mantissa) would be about 1e-3 off
    cfg = TrialConfig(model=model, conv=("16", "pool"), widths=(100,))
    x = torch.rand(128, 1, 28, 28)
    logits = {}
    for device in ("cpu", "cuda"):
        net = build_model(cfg, generator=seeded_generators(0)[1]).to(device)
        with torch.no_grad():
            logits[device] = net((x if model == "cnn" else x.flatten(1)).to(device)).cpu().double()
    error = (logits["cuda"] - logits["cpu"]).norm() / logits["cpu"].norm()
    assert error < 1e-5, f"CUDA differs from the CPU by {error:.1e}: TF32 on?"


@needs_cuda
def test_cuda_training_follows_the_cpu_and_deterministic_mode_repeats_itself():
    data = _as_images(random_dataset())
    cfg = TINY.replace(model="cnn", conv=("8", "pool"), iters=20, eval_every=20)
    cpu = train(cfg, 0, data)["batch_loss"]
    cuda_data = type(data)(*(t.to("cuda") for t in (data.x_train, data.y_train, data.x_test, data.y_test)))
    Numerics(deterministic=True).apply()
    first, second = (train(cfg, 0, cuda_data)["batch_loss"] for _ in range(2))
    assert first == second
    # 20 SGD steps on random labels: float32 rounding differences grow, but stay far below 1e-3
    assert first == pytest.approx(cpu, rel=1e-3)


@needs_cuda
def test_a_cuda_run_records_the_gpu_and_keeps_its_own_trials(tmp_path):
    from repro.layout import Layout
    from repro.runner import run_experiment
    run = run_experiment("vanishing", "quick", seeds=1, device="cuda", progress=False,
                         sets={"iters": "20", "depths": "5", "depth_iters": "5"},
                         layout=Layout(tmp_path / "results", tmp_path / "runs"))
    assert run.env["device"] == "cuda" and run.env["device_name"]
    assert all(t.device == "cuda" and t.key == TrialConfig.from_dict(t.config).key(t.seed, "cuda") for t in run.trials)


@needs_cuda
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "adam"])
def test_seeds_batched_on_cuda_follow_the_one_trial_engine(optimizer):
    """On a GPU a variant's seeds train as one batched model (repro.executor.batches_seeds): each seed's
    numbers follow the one-trial engine on the same GPU within the tolerance tests/test_batched.py states."""
    from repro.batched import train_seeds
    data = random_dataset()
    cuda_data = type(data)(*(t.to("cuda") for t in (data.x_train, data.y_train, data.x_test, data.y_test)))
    cfg = TINY.replace(optimizer=optimizer, iters=60, eval_every=30, batchnorm=optimizer == "adam")
    together = train_seeds(cfg, [0, 1, 2], cuda_data)
    for seed, result in enumerate(together):
        alone = train(cfg, seed, cuda_data)
        assert result["key"] == alone["key"] and result["device"] == "cuda"
        assert result["batch_loss"] == pytest.approx(alone["batch_loss"], rel=1e-3, abs=1e-5)
        assert result["summary"]["final_test_acc"] == pytest.approx(alone["summary"]["final_test_acc"], abs=0.02)
