"""K seeds of one trial config trained as one batched model: K results, each what repro.engine.train
returns for its seed, within float32 rounding.

Every parameter is stacked over seeds (a linear layer's weight is (K, out, in)), and a step runs each
layer for every seed at once, as one batched matrix multiply. Each seed keeps everything the engine
gives it: its own batch stream and initial weights (repro.engine.seeded_generators, repro.nets.build_model,
in the engine's order), its own gradient norms, evaluation points, summary and divergence.

Why K seeds in one model train exactly as K separate runs: the seeds' parameters never meet. The
objective is the sum of the seeds' losses, so a seed's slice of each gradient is that seed's own
gradient; the optimisers are element-wise (SGD, Momentum, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam,
L2 as weight_decay, L1's subgradient and proximal step, max-norm per unit), so torch.optim on a
stacked tensor updates each slice as it would that seed's tensor alone; batch norm normalises each
seed's channels over that seed's batch; dropout draws each seed's masks from that seed's generator.
A diverged seed's NaNs stay in its own slices. On the CPU a seed's numbers are the same to the bit
whichever seeds share its batch, and in whatever order.

What differs from the engine is the order of floating-point sums inside the batched kernels: a
float32 rounding (~1e-7 relative) that training carries on. On small networks it stays far inside
the tests' tolerance (tests/test_batched.py); where a ReLU's input is within rounding of 0, one run
passes the gradient and the other not, and the runs part a little more from there. On MNIST's book
network (784-100x4-10, ReLU, batch 128) that happens within ~100 steps and the batch losses are
up to ~2% apart by step 300, as far as the engine's own run on two threads is from its run on
one: the same trial, not a different one, as seed-to-seed spread goes.

Speed (book network, MNIST, one thread, 2-core EPYC VM under a load of 6-11 from other jobs,
2026-12-04; step_time beside repro.engine.train timed as repro.bench times it, 5 interleaved rounds,
medians of per-round ratios): per seed against one trial at a time, SGD 1.15-1.27x faster at K = 3
and 1.31-1.39x at K = 10 (two runs); Adam 1.08x and 1.18x; AdaGrad 1.09x and 1.28x. The batched
multiplies run at the machine's large-matmul rate (~50 GFLOP/s), so on a CPU K beyond ~10 gains little.

What it does not batch (``supports`` says why; those train one at a time): CNNs, and dropout off the CPU.
"""
from __future__ import annotations

import copy
import functools
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from . import components
from .config import TrialConfig
from .data import Dataset, load
from .engine import BATCH_CHUNK, EVAL_BATCH, _read_back, _subset, seeded_generators, summarize
from .errors import ReproError
from .nets import weighted_layers, build_model
from .optim import l1_penalty, l1_proximal_step, make_optimizer, make_scheduler, max_norm_step, split_decay_groups
from .probes import ActivationProbe, GradNormProbe


def supports(cfg: TrialConfig, device: str = "cpu") -> str | None:
    """None if ``train_seeds`` reproduces the engine for ``cfg`` on ``device``, else the reason it does not."""
    if cfg.model != "mlp":
        return f"model={cfg.model}: only MLPs are batched (seeds' convolutions would be grouped ones, other kernels)"
    if cfg.norm not in ("none", "batchnorm"):
        return f"norm={cfg.norm}: only batch norm is batched (its statistics are per channel, so per seed)"
    for key in ("activation", "optimizer", "penalty"):
        if key in components.users(cfg):
            return (f"{key}={getattr(cfg, key)}: a user's {key} may combine a tensor's entries (a softmax, a "
                    "per-tensor norm), and so the seeds stacked in it")
    if torch.device(device).type != "cpu" and (cfg.dropout or cfg.input_dropout or cfg.output_dropout):
        return ("dropout off the CPU: the engine's masks there come from the device's fused dropout kernel, "
                "which takes no generator per seed")
    return None


def stack_seeds(models: list[nn.Module]) -> nn.Module:
    """One copy of the models' architecture whose every parameter and buffer is the models' own
    stacked over a leading seed dimension (names, order and decay groups stay the models')."""
    params, buffers = stack_module_state(models)
    net = copy.deepcopy(models[0])
    for name, tensor in params.items():
        owner, _, leaf = name.rpartition(".")
        setattr(net.get_submodule(owner), leaf, nn.Parameter(tensor))
    for name, tensor in buffers.items():
        owner, _, leaf = name.rpartition(".")
        setattr(net.get_submodule(owner), leaf, tensor)
    return net


def forward(net: nn.Module, h: torch.Tensor, dropout_rng: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Logits (K, classes, batch) of a stacked MLP for inputs ``h``: (K, features, batch), each seed its
    own batch, or (features, batch), one batch that every seed sees (evaluation). ``dropout_rng``:
    each seed's state of the generator its dropout masks come from (training with dropout only).

    Activations run features x batch: a weight's gradient then comes out of the batched multiply in
    the weight's own (K, out, in) layout, where batch x features would hand torch.optim a transposed
    gradient to copy every step. Measured on the book network (784-100x4-10, batch 128, one thread,
    2-core EPYC VM under load ~8), per seed against one trial at a time: this layout 1.19x at K = 3
    and 1.34x at K = 10; batch x features 1.06x and 1.02x (with (K, in, out) weights 1.08x and 1.17x);
    torch.func.vmap over functional_call 0.85x and 0.79x (its per-operation dispatch costs more than
    the batching saves here)."""
    for module in net.children():
        if isinstance(module, nn.Linear):
            bias = module.bias.unsqueeze(-1)
            # a shared batch meets all K weights in one (K*out, in) x (in, batch) multiply
            h = torch.baddbmm(bias, module.weight, h) if h.dim() == 3 else torch.matmul(module.weight, h) + bias
        elif isinstance(module, nn.BatchNorm1d):
            # each seed's channel is one channel of a (1, K*C, batch) input: F.batch_norm normalises it
            # over that seed's batch and updates that seed's running statistics, torch's own formulas
            k, c, b = h.shape
            affine = [t.reshape(-1) if t is not None else None for t in (module.weight, module.bias)]
            h = F.batch_norm(h.reshape(1, k * c, b), module.running_mean.view(-1), module.running_var.view(-1),
                             *affine, module.training, module.momentum, module.eps).view(k, c, b)
            if module.training:
                module.num_batches_tracked.add_(1)
        elif isinstance(module, nn.Dropout) and module.training:
            h = _seed_dropout(module, h, dropout_rng)
        else:  # an activation, or dropout at evaluation: element-wise, so every seed's slice alike. .forward
            # skips the probes' hooks, which read single-seed passes only (_evaluation_points)
            h = module.forward(h)
    return h


def _seed_dropout(module: nn.Dropout, h: torch.Tensor, rng: list[torch.Tensor]) -> torch.Tensor:
    """The engine's dropout for each seed: the module itself on that seed's (batch, features) input,
    its mask drawn from the global generator set to that seed's state (the engine seeds the global
    generator per trial), so each seed gets exactly the engine's masks. Then that state moves on."""
    out = []
    with torch.random.fork_rng(devices=[]):
        for k, state in enumerate(rng):
            torch.set_rng_state(state)
            out.append(module(h[k].t().contiguous()).t())  # the mask is drawn in the input's memory order
            rng[k] = torch.get_rng_state()
    return torch.stack(out)


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """repro.engine.evaluate for every seed in one pass: mean cross-entropy and accuracy over (x, y) in
    eval mode, each a (K,) device tensor."""
    was_training = net.training
    net.eval()
    loss_sum = correct = 0
    for start in range(0, len(x), EVAL_BATCH):
        out = forward(net, x[start:start + EVAL_BATCH].t())
        target = y[start:start + EVAL_BATCH].expand(out.shape[0], -1)
        loss_sum = loss_sum + F.cross_entropy(out, target, reduction="none").sum(1)
        correct = correct + (out.argmax(1) == target).sum(1)
    net.train(was_training)
    return loss_sum / len(x), correct / len(x)


@torch.no_grad()
def after_update_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """repro.engine.after_update_loss for every seed: each seed's loss on its own batch after the
    update, in eval mode, as a (K,) tensor."""
    net.eval()
    loss = F.cross_entropy(forward(net, x), y, reduction="none").mean(1)
    net.train()
    return loss


def seed_tensors(net: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Seed k's parameters and buffers, named as in its own model: views into the stack, no copies."""
    return {name: t[k] for name, t in net.state_dict(keep_vars=True).items()}


class SeedGradNorms:
    """Per-seed GradNormProbes filled by one batched record per step.

    Each seed's probe keeps the engine's definitions (its per-layer rows and the total over every
    parameter); only its per-parameter norms are a view into one (steps, K, parameters) buffer that
    ``record`` writes for all seeds at once."""

    def __init__(self, net: nn.Module, seeds: int, steps: int):
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.norms = torch.zeros(steps, seeds, len(self.params), device=self.params[0].device)
        self.probes = []
        for k in range(seeds):
            probe = GradNormProbe(net, steps)
            probe.param_norms = self.norms[:, k]
            self.probes.append(probe)

    def record(self, step: int) -> None:
        """Each seed's norm of each parameter's gradient slice; after backward, before the step."""
        norms = [torch.linalg.vector_norm(p.grad.flatten(1), dim=1) if p.grad is not None
                 else torch.zeros(p.shape[0], device=p.device) for p in self.params]
        torch.stack(norms, 1, out=self.norms[step])


def train_seeds(cfg: TrialConfig, seeds: list[int], data: Dataset, writers=None, progress=None,
                keep_state: bool = False) -> list[dict]:
    """repro.engine.train for each seed of ``seeds``, trained together as one batched model.

    ``writers`` (one repro.tb.TrialWriter or None per seed) receive each seed's evaluation points and
    final result; ``progress`` is called with the steps done (summed over the seeds still training)
    since its last call; ``keep_state`` adds each seed's trained weights as ``result["state"]``."""
    started = time.perf_counter()
    data = _subset(data, cfg)
    device = data.x_train.device
    reason = supports(cfg, device.type)
    if reason:
        raise ReproError(f"batched training: {reason}")
    seeds = list(seeds)
    n = len(seeds)
    writers = writers or [None] * n
    models, batch_gens, dropout_rng = [], [], []
    for seed in seeds:  # each seed exactly as the engine starts it
        batch_gen, init_gen = seeded_generators(seed)
        torch.manual_seed(seed)  # torch's own init ("default") and dropout draw from the global generator
        models.append(build_model(cfg, generator=init_gen, input_shape=tuple(data.x_train.shape[1:])).to(device))
        dropout_rng.append(torch.get_rng_state())
        batch_gens.append(batch_gen)
    net = stack_seeds(models)
    del models
    optimizer = make_optimizer(net, cfg)
    if device.type == "cpu":
        # A fused CPU kernel steps a tensor's last few elements (numel mod the SIMD width) in scalar code
        # that rounds otherwise, and those are the last seed's: its numbers would depend on how many
        # seeds share the batch. foreach is one rounding per operation wherever an element lies, so a
        # seed's numbers are its own alone (tests/test_batched.py), at some cost in speed (book network,
        # K = 10, one thread: an Adam step 1.0 ms fused, 3.4 ms foreach, of a whole step's 23 ms).
        for group in optimizer.param_groups:
            group.update(fused=False, foreach=True)
    scheduler = make_scheduler(optimizer, cfg)
    weights, _ = split_decay_groups(net)
    unit_rows = [w.detach().view(-1, w.shape[-1]) for w in weights]  # max-norm's rows, every seed's units
    layers = [name for name, _ in weighted_layers(net)]

    train_eval = (data.x_train[:cfg.train_eval_size], data.y_train[:cfg.train_eval_size])
    probe_x = (data.x_test if cfg.probe_split == "test" else data.x_train)[:cfg.probe_size]
    grad_norms = SeedGradNorms(net, n, cfg.iters)
    act_probe = ActivationProbe(net, cfg.activation, layer_outputs=cfg.probe_outputs)
    batch_loss = torch.zeros(n, cfg.iters, device=device)
    post_steps = list(range(0, cfg.iters, cfg.post_loss_every)) if cfg.post_loss_every else []
    post_loss = torch.zeros(n, len(post_steps), device=device)
    histories: list[list[dict]] = [[] for _ in seeds]
    results: list[dict | None] = [None] * n
    training = list(range(n))  # the seeds not yet found diverged
    last_eval = 0

    def finish(k: int, status: str, diverged_at: int | None) -> None:
        done_steps = diverged_at or cfg.iters
        losses = batch_loss[k, :done_steps].tolist()
        post = [[s, v] for s, v in zip(post_steps, post_loss[k].tolist()) if s < done_steps]
        result = {
            "config": cfg.to_dict(), "seed": seeds[k], "key": cfg.key(seeds[k], device.type), "device": device.type,
            "layers": layers,
            "components": components.used(cfg), "status": status, "diverged_at": diverged_at,
            "history": histories[k], "batch_loss": losses, "post_update_loss": post,
            "summary": summarize(histories[k], losses, grad_norms.probes[k].buffer, cfg, diverged_at, post),
            # the batch's time so far, shared by its seeds: a variant's trials add up to what it cost
            "wall_time": (time.perf_counter() - started) / n,
        }
        if keep_state:
            result["state"] = {name: t.detach().to("cpu", copy=True) for name, t in seed_tensors(net, k).items()}
        if writers[k] is not None:
            writers[k].log_final(result)
        results[k] = result

    net.train()
    for step in range(cfg.iters):
        if step % BATCH_CHUNK == 0:  # each seed's stream in the engine's chunks; a step's row is every
            # seed's batch in turn, so that one index_select gathers them all
            chunk = min(BATCH_CHUNK, cfg.iters - step)
            batches = torch.stack([torch.randint(len(data.y_train), (chunk, cfg.batch_size), generator=g)
                                   for g in batch_gens], 1).view(chunk, n * cfg.batch_size).to(device)
        index = batches[step % BATCH_CHUNK]
        x = data.x_train.index_select(0, index).view(n, cfg.batch_size, -1).transpose(1, 2)
        y = data.y_train.index_select(0, index).view(n, cfg.batch_size)
        loss = F.cross_entropy(forward(net, x, dropout_rng), y, reduction="none").mean(1)
        # the sum's gradient, sliced by seed, is each seed's own loss's
        objective = loss.sum() + l1_penalty(weights, cfg.l1) if cfg.l1 and cfg.l1_mode == "subgradient" else loss.sum()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if cfg.telemetry:
            grad_norms.record(step)
        optimizer.step()
        if cfg.l1 and cfg.l1_mode == "proximal":
            l1_proximal_step(weights, optimizer.param_groups[0]["lr"] * cfg.l1)
        if cfg.max_norm:
            max_norm_step(unit_rows, cfg.max_norm)
        if cfg.post_loss_every and step % cfg.post_loss_every == 0:
            post_loss[:, step // cfg.post_loss_every] = after_update_loss(net, x, y)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        batch_loss[:, step] = loss.detach()

        done = step + 1
        if done % cfg.eval_every and done != cfg.iters:
            continue
        # Evaluation point: the engine's divergence rule and point, seed by seed, read back in one copy each.
        finite = torch.isfinite(batch_loss[training, last_eval:done])
        still = finite.all(1).tolist()
        for row, k in enumerate(training):
            if not still[row]:
                diverged_at = last_eval + int((~finite[row]).nonzero()[0, 0]) + 1
                histories[k].append({"step": diverged_at, "diverged": True})
                finish(k, "diverged", diverged_at)
        training = [k for row, k in enumerate(training) if still[row]]
        if not training:
            break
        probe_due = cfg.telemetry and (cfg.probe_every == 0 or done % cfg.probe_every == 0 or done == cfg.iters)
        points = _evaluation_points(net, training, done, lr, batch_loss[:, last_eval:done], grad_norms,
                                    last_eval, layers, train_eval, data, act_probe if probe_due else None, probe_x)
        for k, point in zip(training, points):
            histories[k].append(point)
            if writers[k] is not None:
                writers[k].log_point(point)
        if progress is not None:
            progress((done - last_eval) * len(training))
        last_eval = done

    act_probe.close()
    for k in training:
        finish(k, "ok", None)
    return results


def _evaluation_points(net, training, step, lr, intervals, grad_norms, last_eval, layers, train_eval, data,
                       act_probe, probe_x) -> list[dict]:
    """repro.engine's evaluation point for each seed in ``training``, assembled as the engine assembles
    it: test and train loss and accuracy in one batched pass each; activation statistics from the
    engine's own probe, run on each seed's network in turn (its hooks see exactly the engine's
    single-seed pass); every seed's values read back in one copy."""
    test_loss, test_acc = evaluate(net, data.x_test, data.y_test)
    train_loss, train_acc = evaluate(net, *train_eval)
    values = {}
    for k in training:
        measured = {"loss_batch": intervals[k].mean(), "loss_train": train_loss[k], "accuracy_train": train_acc[k],
                    "loss_test": test_loss[k], "accuracy_test": test_acc[k]}
        per_layer = {"grad_norm": dict(zip(layers + ["total"], grad_norms.probes[k].rows(last_eval, step).mean(0)))}
        if act_probe is not None:
            net.eval()
            with torch.no_grad():
                functional_call(net, seed_tensors(net, k), (probe_x,))
            net.train()
            per_layer["activations"] = dict(act_probe.captured)
            if act_probe.layer_outputs:
                per_layer["layer_outputs"] = dict(act_probe.layer_outputs)
        values[k] = {"measured": measured, "per_layer": per_layer}
    values = _read_back(values)
    points = []
    for k in training:
        point = {"step": step, "lr": lr, **values[k]["measured"], **values[k]["per_layer"]}
        point.setdefault("activations", {})
        points.append(point)
    return points


@functools.lru_cache(maxsize=2)
def _mnist(device: str) -> Dataset:
    return load("mnist", device=device, log=lambda message: None)


def step_time(cfg: TrialConfig, k: int, device: str = "cpu", steps: int = 500) -> float:
    """Seconds per step of ``k`` seeds of ``cfg`` trained as one batched model on MNIST on ``device``:
    train_seeds over ``steps`` steps, evaluated once at the end, timed whole and divided by ``steps``
    (as repro.bench times the engine's one trial). Divide by ``k`` for the time per seed."""
    data = _mnist(device)
    run = cfg.replace(iters=steps, eval_every=steps)
    seeds = list(range(k))
    train_seeds(run.replace(iters=20, eval_every=20), seeds, data)  # warm-up: allocations, kernel selection
    start = time.perf_counter()
    train_seeds(run, seeds, data)
    return (time.perf_counter() - start) / steps
