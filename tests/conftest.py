"""Shared fixtures: each experiment's quick preset runs once per test session, into a temp dir."""
from __future__ import annotations

import pytest

from repro.runner import run_experiment


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``quick_run("vanishing")`` -> the results dict of that experiment's quick preset (cached)."""
    cache: dict[str, dict] = {}

    def run(name: str, **kwargs) -> dict:
        if name not in cache:
            root = tmp_path_factory.mktemp(f"quick-{name}")
            cache[name] = run_experiment(name, "quick", device="cpu", logdir=root / "runs",
                                         results_dir=root / "results", progress=False, **kwargs)
        return cache[name]
    return run


def random_dataset(seed: int = 0, n_train: int = 200, n_test: int = 100):
    """Random 784-pixel images with random labels: enough to exercise the engine, nothing to learn."""
    import torch
    from repro.data import Dataset
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_test, 784, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def per_seed(results: dict, variant: str, metric: str = "final_test_acc") -> list[float]:
    return [t["summary"][metric] for t in results["trials"] if t["variant"] == variant]


def assert_claims_hold(results: dict) -> None:
    failed = [f"{c['statement']}: measured {c['measured']:.4g} ({c['bound']})"
              for c in results["claims"] if not c["holds"]]
    assert not failed, "claims failed:\n" + "\n".join(failed)
