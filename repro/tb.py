"""TensorBoard: the tag names, per-trial writers, seed aggregates, layouts, hparams and figures.

Run directories: runs/<experiment>/<preset>/<variant>/seed<k>/ for trials and .../<variant>/mean/
for the aggregate across seeds. The layout lives in runs/<experiment>/<preset>/ itself.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

# evaluation-point field -> scalar tag (DESIGN.md's names)
POINT_TAGS = {"loss_train": "loss/train", "loss_test": "loss/test", "loss_batch": "loss/batch",
              "accuracy_train": "accuracy/train", "accuracy_test": "accuracy/test", "lr": "lr"}
ACTIVATION_TAGS = {"mean": "act_mean", "std": "act_std", "saturated": "act_saturated", "dead": "act_dead",
                   "preact_mean": "preact_mean", "preact_std": "preact_std"}
# final metrics shown in the hparams table
HPARAM_METRICS = {"final_test_acc": "hparams/final_test_acc", "final_test_loss": "hparams/final_test_loss",
                  "grad_ratio_first_last": "hparams/grad_ratio_first_last"}
AGGREGATED = ("accuracy_test", "loss_test", "accuracy_train", "loss_train")


def trial_dir(logdir: Path, experiment: str, preset: str, variant: str, seed: int) -> Path:
    return Path(logdir) / experiment / preset / safe_name(variant) / f"seed{seed}"


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", name)


class TrialWriter:
    """Writes one trial's evaluation points, histograms and hparams into its own directory."""

    def __init__(self, path: Path, hparams: dict | None = None):
        self.writer = SummaryWriter(str(path))
        self.hparams = hparams or {}

    def log_point(self, point: dict) -> None:
        step, w = point["step"], self.writer
        for field, tag in POINT_TAGS.items():
            w.add_scalar(tag, point[field], step)
        for layer, norm in point["grad_norm"].items():
            w.add_scalar(f"grad_norm/{layer}", norm, step)
        for layer, stats in point["activations"].items():
            for key, tag in ACTIVATION_TAGS.items():
                w.add_scalar(f"{tag}/{layer}", stats[key], step)
        for layer, stats in point.get("layer_outputs", {}).items():  # config probe_outputs
            w.add_scalar(f"out_mean/{layer}", stats["mean"], step)
            w.add_scalar(f"out_std/{layer}", stats["std"], step)

    def log_histograms(self, model: torch.nn.Module, act_probe, probe_x: torch.Tensor, step: int) -> None:
        from .nets import weighted_layers
        for name, module in weighted_layers(model):
            self.writer.add_histogram(f"weights/{name}", module.weight.detach().cpu(), step)
            if module.weight.grad is not None:
                self.writer.add_histogram(f"grads/{name}", module.weight.grad.detach().cpu(), step)
        act_probe.keep_outputs = True
        with torch.no_grad():
            model.eval()
            model(probe_x)
            model.train()
        act_probe.keep_outputs = False
        for name, out in act_probe.outputs.items():
            self.writer.add_histogram(f"activations/{name}", out.cpu(), step)
        act_probe.outputs.clear()

    def log_final(self, result: dict) -> None:
        hp = {k: _hparam_value(v) for k, v in {**result["config"], **self.hparams}.items()}
        metrics = {tag: float(result["summary"][key]) for key, tag in HPARAM_METRICS.items()}
        hp["status"] = result["status"]
        hp["seed"] = result["seed"]  # one row per trial in the hparams table, seeds told apart
        experiment, *session = hparams_summary(hp, metrics)
        for summary in (_flag_compared(experiment, {*self.hparams, "seed"}), *session):
            self.writer.file_writer.add_summary(summary)
        step = result["config"]["iters"]
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)
        if result["status"] == "diverged":
            self.writer.add_text("status", f"diverged at step {result['diverged_at']}", step)
        self.writer.close()


def _flag_compared(summary, names: set[str]):
    """Mark ``names`` (the caller's columns, e.g. variant and group, and the seed: what tells trials
    apart) as differing in the experiment summary. TensorBoard's hparams table opens on five columns,
    differing ones first; torch marks none, so it would open on the alphabetically first config keys."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    plugin_data = summary.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in names
    plugin_data.content = data.SerializeToString()
    return summary


def _hparam_value(value):
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if value is None:
        return "none"
    return value


def mean_tag(experiment: str, tag: str) -> str:
    """Tags of the `mean` runs start with the experiment's name: a custom-scalars chart selects tags,
    not runs, so this keeps one experiment's charts free of every other experiment's runs."""
    return f"{experiment}/{tag}" if experiment else tag


def write_mean_run(path: Path, variant: str, trials: list[dict], experiment: str = "") -> None:
    """Mean, min and max across seeds of the main curves, and the mean gradient flow of the variant."""
    ok = [t for t in trials if t["status"] == "ok"]
    if not ok:
        return
    steps = [p["step"] for p in ok[0]["history"]]
    writer = SummaryWriter(str(path))
    for i, step in enumerate(steps):
        points = [t["history"][i] for t in ok if len(t["history"]) > i]
        for field in AGGREGATED:
            values = np.array([p[field] for p in points])
            base = POINT_TAGS[field]
            writer.add_scalar(mean_tag(experiment, f"{base}/mean"), values.mean(), step)
            writer.add_scalar(mean_tag(experiment, f"{base}/min"), values.min(), step)
            writer.add_scalar(mean_tag(experiment, f"{base}/max"), values.max(), step)
        for layer in ok[0]["layers"]:
            writer.add_scalar(mean_tag(experiment, f"grad_flow/{safe_name(variant)}/{layer}"),
                              float(np.mean([p["grad_norm"][layer] for p in points])), step)
    writer.close()


def write_layout(path: Path, experiment: str, variants: list[str]) -> None:
    """Custom-scalars layout: one gradient-flow chart per variant, margin charts across seeds."""
    flow = {v: ["Multiline", ["^" + re.escape(mean_tag(experiment, f"grad_flow/{safe_name(v)}/"))]]
            for v in variants}
    margins = {f"{POINT_TAGS[f]} (mean, min-max over seeds)":
               ["Margin", [mean_tag(experiment, f"{POINT_TAGS[f]}/{stat}") for stat in ("mean", "min", "max")]]
               for f in AGGREGATED}
    layout = {f"{experiment}: accuracy and loss across seeds (one line per variant)": margins,
              f"{experiment}: gradient flow (per-layer gradient norm, mean over seeds)": flow}
    writer = SummaryWriter(str(path))
    writer.add_custom_scalars(layout)
    writer.close()


def log_figure(path: Path, tag: str, figure) -> None:
    """A matplotlib figure as a TensorBoard image (the same picture as the experiment's PNG)."""
    writer = SummaryWriter(str(path))
    writer.add_figure(tag, figure)
    writer.close()
