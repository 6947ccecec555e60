"""What the paper experiments added to repro/: Glorot's and Martens' inits, softsign, AdaDelta, the
lr/sqrt(t) schedule, Adam without bias correction, max-norm, probes on test images, one unit's
percentiles, logistic regression (no hidden layer), and `python -m repro blocks`."""
import json
import math

import pytest
import torch

from conftest import random_dataset
from repro.cli import main
from repro.config import ConfigError, TrialConfig
from repro.engine import train
from repro.nets import build_model, init_variance, init_weight
from repro.optim import lr_factor, make_optimizer, make_scheduler, max_norm_step


@pytest.mark.parametrize("scheme", ["standard", "normalized", "sparse:15"])
def test_paper_inits_have_their_variance(scheme):
    w = torch.empty(400, 300)
    init_weight(w, scheme, torch.Generator().manual_seed(0))
    assert float(w.var()) == pytest.approx(init_variance(scheme, 300, 400), rel=0.03)


def test_standard_and_normalized_are_uniform_with_their_bounds():
    w = torch.empty(400, 300)
    init_weight(w, "standard", torch.Generator().manual_seed(0))
    assert float(w.abs().max()) <= 1 / math.sqrt(300) and float(w.abs().max()) > 0.99 / math.sqrt(300)
    init_weight(w, "normalized", torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / 700)
    assert bound * 0.99 < float(w.abs().max()) <= bound


def test_sparse_init_gives_each_unit_k_incoming_weights():
    w = torch.empty(50, 784)
    init_weight(w, "sparse:15", torch.Generator().manual_seed(1))
    assert set((w != 0).sum(1).tolist()) == {15}
    kernel = torch.empty(8, 3, 5, 5)  # a conv filter's 75 inputs: 15 of them nonzero
    init_weight(kernel, "sparse:15", torch.Generator().manual_seed(1))
    assert set((kernel.view(8, -1) != 0).sum(1).tolist()) == {15}


def test_max_norm_rescales_only_the_units_beyond_it():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    max_norm_step([w], 2.0)
    assert torch.linalg.vector_norm(w, dim=1).tolist() == pytest.approx([2.0, 0.5])
    assert w[0].tolist() == pytest.approx([1.2, 1.6])  # direction kept


def test_inv_sqrt_schedule_divides_the_rate_by_sqrt_t():
    cfg = TrialConfig(widths=(), optimizer="sgd", lr=0.5, schedule="inv-sqrt")
    model = build_model(cfg)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.5 / math.sqrt(t) for t in (1, 2, 3, 4)])


def test_adam_without_bias_correction_is_the_uncorrected_rule():
    """torch's Adam with lr_factor's multiplier against the update written out without correction."""
    cfg = TrialConfig(widths=(), optimizer="adam", lr=0.01, beta1=0.9, beta2=0.999, bias_correction=False, eps=1e-8)
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    optimizer = torch.optim.Adam([p], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: lr_factor(cfg, done + 1))
    q, m, v = p.detach().clone(), torch.zeros(3), torch.zeros(3)
    for t in range(1, 6):
        grad = torch.tensor([0.3, -1.0, 2.0]) * t
        p.grad = grad.clone()
        optimizer.step()
        scheduler.step()
        m = cfg.beta1 * m + (1 - cfg.beta1) * grad
        v = cfg.beta2 * v + (1 - cfg.beta2) * grad ** 2
        q -= cfg.lr * m / (v.sqrt() + cfg.eps * math.sqrt(1 - cfg.beta2 ** t))
        assert p.detach().tolist() == pytest.approx(q.tolist(), rel=1e-5)


def test_bias_correction_off_needs_a_lambda_schedule():
    with pytest.raises(ConfigError, match="bias_correction=false"):
        TrialConfig().replace(optimizer="adam", bias_correction=False, schedule="cosine")


def test_logistic_regression_softsign_and_adadelta_train():
    data = random_dataset()
    for cfg in (TrialConfig(widths=(), optimizer="adadelta", lr=1.0, iters=20, eval_every=10, batch_size=20),
                TrialConfig(widths=(16,), activation="softsign", init="normalized", iters=20, eval_every=10, batch_size=20)):
        result = train(cfg, 0, data)
        assert result["status"] == "ok" and len(result["history"]) == 2


def test_probes_on_test_images_record_one_units_percentiles():
    data = random_dataset(n_test=100)
    cfg = TrialConfig(widths=(8, 8), activation="sigmoid", iters=10, eval_every=10, batch_size=10,
                      probe_split="test", probe_size=50)
    result = train(cfg, 0, data, keep_state=True)
    point = result["history"][-1]["activations"]["act2"]
    model = build_model(cfg)
    model.load_state_dict(result["state"])
    with torch.no_grad():  # the input of act2's unit 0 on the first 50 test images, from the trained net
        unit = model.fc2(model.act1(model.fc1(data.x_test[:50])))[:, 0]
    expected = torch.quantile(unit, torch.tensor([0.15, 0.5, 0.85]))
    assert [point[f"unit0_q{q}"] for q in (15, 50, 85)] == pytest.approx(expected.tolist(), abs=1e-6)
    with pytest.raises(ConfigError, match="probe_split"):
        cfg.replace(probe_split="validation")


def test_blocks_rejudges_claims_per_seed_block(tmp_path, capsys):
    from repro.layout import Layout
    from repro.runner import run_experiment
    results = run_experiment("he2015", "quick", seeds=2, device="cpu", layout=Layout(tmp_path / "results", tmp_path / "runs"),
                             progress=False, sets={"iters": 50, "depths": (3, 4)})
    assert main(["blocks", str(results.path), "--size", "1"]) == 0
    out = capsys.readouterr().out
    assert "claims on 2 blocks of 1 seeds" in out and "seeds 0-0" in out and "seeds 1-1" in out
    for claim in results.claims:
        assert claim.id in out
    assert main(["blocks", str(results.path), "--size", "3"]) == 2
    assert "too few for blocks of 3" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not": "results"}) + "}")
    assert main(["blocks", str(bad)]) == 2
