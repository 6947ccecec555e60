"""The one training loop: a trial config and a seed in, a history out.

Read it top to bottom: batches are index slices of tensors already on the device, drawn with
replacement each iteration (the references' convention) from a generator seeded by the trial's
seed alone, so every variant of an experiment sees the same batches. The step has no host sync:
batch losses and gradient norms go into device buffers, read back only at evaluation points.

Divergence has one definition in this suite: a batch loss that is NaN or inf. The loop stops the
trial at the first such step (status "diverged", ``diverged_at``), and every final metric of it is
NaN. Other views (a loss that blows up while still finite, a run that ends above its start) are
separate, named metrics in repro/experiment.py.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from . import components
from .config import TrialConfig
from .data import Dataset, DataError
from .nets import build_model, weighted_layers
from .optim import l1_penalty, l1_proximal_step, make_optimizer, make_scheduler, max_norm_step, split_decay_groups
from . import metrics
from .probes import ActivationProbe, GradNormProbe

EVAL_BATCH = 5000  # large enough to keep evaluation cheap, small enough for CNN activations
BATCH_CHUNK = 1000  # steps whose batch indices are drawn at once (all of them at once: 8 bytes x batch x iters)


def diverged(trial) -> bool:
    """Whether a trial (a repro.results.Trial) diverged, by the rule above (its loss went NaN or inf)."""
    return trial.status == "diverged"


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy over (x, y) in eval mode, as device scalars."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for start in range(0, len(x), EVAL_BATCH):
        out = model(x[start:start + EVAL_BATCH])
        target = y[start:start + EVAL_BATCH]
        loss_sum += F.cross_entropy(out, target, reduction="sum")
        correct += (out.argmax(1) == target).sum()
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def _subset(data: Dataset, cfg: TrialConfig) -> Dataset:
    for split, size in (("train", cfg.train_size), ("test", cfg.test_size)):
        available = len(getattr(data, f"y_{split}"))
        if size is not None and size > available:
            raise DataError(f"{split}_size={size} is out of range: the dataset has {available} {split} images")
    n_train, n_test = cfg.train_size, cfg.test_size
    return Dataset(data.x_train[:n_train], data.y_train[:n_train], data.x_test[:n_test], data.y_test[:n_test])


def seeded_generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Independent streams for batch order and for weights, both fixed by the trial's seed."""
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 7919)


def train(cfg: TrialConfig, seed: int, data: Dataset, writer=None, progress=None,
          keep_state: bool = False) -> dict:
    """Train one network; returns config, history, per-step batch losses, summary and status.

    ``writer`` (a repro.tb.TrialWriter) receives every evaluation point; ``progress`` is called
    with the number of steps done since its last call; ``keep_state`` adds the trained weights
    (a CPU state_dict) as ``result["state"]`` for experiments that inspect them."""
    started = time.perf_counter()
    data = _subset(data, cfg)
    device = data.x_train.device
    batch_gen, init_gen = seeded_generators(seed)
    torch.manual_seed(seed)  # dropout masks use the global generator
    model = build_model(cfg, generator=init_gen, input_shape=tuple(data.x_train.shape[1:])).to(device)
    if device.type == "cpu" and cfg.model == "cnn":
        # oneDNN's convolutions and max pooling run faster on channels-last (NHWC) tensors on CPU
        # (python -m repro bench: DeepConvNet step); weights in NHWC make every activation follow.
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    weights, _ = split_decay_groups(model)
    penalty = components.penalty_function(cfg.penalty)
    layers = [name for name, _ in weighted_layers(model)]

    train_eval = (data.x_train[:cfg.train_eval_size], data.y_train[:cfg.train_eval_size])
    probe_x = (data.x_test if cfg.probe_split == "test" else data.x_train)[:cfg.probe_size]
    grad_probe = GradNormProbe(model, cfg.iters)
    act_probe = ActivationProbe(model, cfg.activation, layer_outputs=cfg.probe_outputs)
    batch_loss = torch.zeros(cfg.iters, device=device)
    post_steps = list(range(0, cfg.iters, cfg.post_loss_every)) if cfg.post_loss_every else []
    post_loss = torch.zeros(len(post_steps), device=device)
    history, status, diverged_at = [], "ok", None
    last_eval = 0

    model.train()
    for step in range(cfg.iters):
        if step % BATCH_CHUNK == 0:  # the generator is serial: chunks give the same stream as one draw of all
            batches = torch.randint(len(data.y_train), (min(BATCH_CHUNK, cfg.iters - step), cfg.batch_size),
                                    generator=batch_gen).to(device)
        index = batches[step % BATCH_CHUNK]
        # index_select, not x[index]: advanced indexing is slower for the same rows on CPU (make bench times both)
        x, y = data.x_train.index_select(0, index), data.y_train.index_select(0, index)
        loss = F.cross_entropy(model(x), y)
        objective = loss + l1_penalty(weights, cfg.l1) if cfg.l1 and cfg.l1_mode == "subgradient" else loss
        if penalty is not None:
            objective = objective + penalty(weights)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if cfg.telemetry:
            grad_probe.record(step)
        optimizer.step()
        if cfg.l1 and cfg.l1_mode == "proximal":
            l1_proximal_step(weights, optimizer.param_groups[0]["lr"] * cfg.l1)
        if cfg.max_norm:
            max_norm_step(weights, cfg.max_norm)
        if cfg.post_loss_every and step % cfg.post_loss_every == 0:
            post_loss[step // cfg.post_loss_every] = after_update_loss(model, x, y)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        batch_loss[step] = loss.detach()

        done = step + 1
        if done % cfg.eval_every and done != cfg.iters:
            continue
        # Evaluation point: the only place the loop reads anything back from the device.
        interval = batch_loss[last_eval:done]
        finite = torch.isfinite(interval)
        if not bool(finite.all()):
            status, diverged_at = "diverged", last_eval + int((~finite).nonzero()[0, 0]) + 1
            history.append({"step": diverged_at, "diverged": True})
            break
        probe_due = cfg.telemetry and (cfg.probe_every == 0 or done % cfg.probe_every == 0 or done == cfg.iters)
        point = _evaluation_point(model, cfg, done, lr, interval, grad_probe.rows(last_eval, done),
                                  layers, train_eval, data, act_probe if probe_due else None, probe_x)
        history.append(point)
        if writer is not None:
            writer.log_point(point)
        if progress is not None:
            progress(done - last_eval)
        last_eval = done

    act_probe.close()
    losses = batch_loss[:diverged_at or cfg.iters].tolist()
    done_steps = diverged_at or cfg.iters
    post = [[s, v] for s, v in zip(post_steps, post_loss.tolist()) if s < done_steps]
    result = {
        "config": cfg.to_dict(), "seed": seed, "key": cfg.key(seed, device.type), "device": device.type, "layers": layers,
        "components": components.used(cfg),  # a user's component: its name, file and the file's sha256
        "status": status, "diverged_at": diverged_at, "history": history, "batch_loss": losses,
        "post_update_loss": post,
        "summary": summarize(history, losses, grad_probe.buffer, cfg, diverged_at, post),
        "wall_time": time.perf_counter() - started,
    }
    if keep_state:
        result["state"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if writer is not None:
        writer.log_final(result)
    return result


@torch.no_grad()
def after_update_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss on the step's own batch, recomputed after the update, in eval mode (the book's
    loss(x, t) runs its networks with train_flg=False): what the book prints every 100 iterations."""
    model.eval()
    loss = F.cross_entropy(model(x), y)
    model.train()
    return loss


def _evaluation_point(model, cfg, step, lr, interval, grad_rows, layers, train_eval, data, act_probe, probe_x):
    """One evaluation point: every POINT and LAYER metric of repro/metrics.py, by name. Device scalars
    are gathered into one tensor and read back with a single copy."""
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    train_loss, train_acc = evaluate(model, *train_eval)
    measured = {"loss_batch": interval.mean(), "loss_train": train_loss, "accuracy_train": train_acc,
                "loss_test": test_loss, "accuracy_test": test_acc}
    grad_names = layers + ["total"]
    per_layer = {"grad_norm": dict(zip(grad_names, grad_rows.mean(0)))}
    if act_probe is not None:
        with torch.no_grad():
            model.eval()
            model(probe_x)
            model.train()
        per_layer["activations"] = act_probe.captured
        if act_probe.layer_outputs:
            per_layer["layer_outputs"] = act_probe.layer_outputs
    point = {"step": step, "lr": lr, **_read_back(measured)}
    point.update(_read_back(per_layer))
    point.setdefault("activations", {})
    return point


def _read_back(values: dict) -> dict:
    """A nested dict of device scalars as Python floats, through one stacked tensor (one sync)."""
    leaves = []

    def collect(node):
        for v in node.values():
            collect(v) if isinstance(v, dict) else leaves.append(v)
    collect(values)
    flat = iter(torch.stack(leaves).tolist()) if leaves else iter(())

    def rebuild(node):
        return {k: rebuild(v) if isinstance(v, dict) else next(flat) for k, v in node.items()}
    return rebuild(values)


def summarize(history: list[dict], batch_loss: list[float], grad_buffer: torch.Tensor,
              cfg: TrialConfig, diverged_at: int | None, post_update: list | None = None) -> dict:
    """The scalar outcomes of a trial that experiments and aggregates compare: every TRIAL metric of
    repro/metrics.py (late_loss, the book's post_update_loss, final accuracies, ...)."""
    return metrics.summarize(metrics.TrialRecord(history, batch_loss, grad_buffer, cfg, diverged_at, post_update))
