"""How CUDA computes float32, the same in every process that trains a trial: the numerics policy.

The policy (``Numerics``) is set once per command at the edge (the CLI's --deterministic and --tf32)
and travels inside every TrialSpec, so a spawned worker or a Ray task applies the same policy before
it trains: process-wide torch settings do not cross a process boundary by themselves.

TF32 is off unless --tf32 asks for it. On Ampere and later GPUs cuDNN runs float32 convolutions in
TF32 by default (a 10-bit mantissa: about 1e-3 relative error per product), so CNN numbers would
differ from the CPU's far beyond float32 rounding, and the claims' bounds and the tests' thresholds
were measured on the CPU. With TF32 off, CUDA float32 matches the CPU within float32 rounding
(tests/test_device.py checks it on a GPU); --tf32 trades that for speed on CNNs.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import asdict, dataclass

import torch


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
