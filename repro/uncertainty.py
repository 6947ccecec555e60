"""Verdicts that are statistics: a published figure against one run of ours, a claim with its interval.

A reference figure is one run of its source (or a range over several), so it is judged by where ONE
run of ours would fall, from our per-seed values (NaN: a diverged seed):
- one mode: the 95% prediction interval for a new run, mean ± t(0.975, n-1)·s·sqrt(1 + 1/n). The
  verdict is "consistent with our distribution" where the reference (widened by its printed
  precision) overlaps it, else "outside our distribution". A range reference is consistent where it
  overlaps the interval: at least some of its runs could be ours.
- modes: the sorted finite values split at their widest gap while it is wider than SPLIT_GAP
  times t(0.975, df)·s, s the sd pooled within the groups the split leaves and df its degrees of
  freedom: five times the half-width of a 95% interval from that spread, so a split resting on one
  degree of freedom (n = 3) needs a gap of 64 s. Diverged seeds are a mode of their own. The
  reference is "in one of our modes" where it overlaps one finite mode's prediction interval (with
  the pooled s and df), else "in none of our modes".
- under MIN_SEEDS seeds: "too few seeds to tell". At n = 2 the interval is mean ± 15.6 s, from an sd
  with one degree of freedom: it catches a figure 3 sd away 15% of the time. n = 3 is the least
  where a verdict says something (± 5.0 s: a far-off figure, such as 5.0 against losses of
  0.23 ± 0.015, is caught at once), though "consistent" at n = 3 is weak (the table).

Error rates of the rule, measured by simulation (tests/test_uncertainty.py: 5000 normal samples per
n, numpy seed 0; "outside" counts "in none of our modes" too; a false split is a normal sample
reported as modes; with no split the first two columns would be 5% and the noncentral t's 32%,
55%, 72%):

    n    a reference from the same normal called outside    one 3 sd away caught    false split
    3    7.1%                                               33.2%                   3.5%
    5    5.5%                                               55.0%                   0.7%
    10   4.9%                                               72.9%                   0.0%

A claim's measured value gets its uncertainty from a bootstrap over seeds: seed indices resampled
with replacement, jointly for all variants (they share seeds and batches), and the experiment's own
claims re-judged on each resample. The 95% interval is the percentile interval of the resampled
values; at few seeds it is too narrow (the bootstrap's sd of a mean is sqrt((n-1)/n) of s/sqrt(n),
and n = 3 seeds have only 10 distinct resamples): a mean's interval covered the true mean in 77%
of normal samples at n = 3, 88% at n = 5, 89% at n = 10 (tests/test_uncertainty.py). A claim is
settled where its interval lies on one side of its bound (a "condition" claim: where it holds in
>= 95% or <= 5% of resamples). For an unsettled one, an estimate of the seeds that would settle it,
taking the half-width to shrink as 1/sqrt(n): n·(half-width / |value - bound|)²; for a condition
claim the support read as a normal tail, whose z grows as sqrt(n): n·(z(0.95) / z(support))².
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

MIN_SEEDS = 3
SPLIT_GAP = 5.0    # a split: a gap over 5x the half-width of a 95% interval from the spread within the groups
LEVEL = 0.95

CONSISTENT, OUTSIDE, TOO_FEW = "consistent with our distribution", "outside our distribution", "too few seeds to tell"
IN_MODE, IN_NO_MODE = "in one of our modes", "in none of our modes"


def printed_precision(*values: float) -> float:
    """Half a unit in the last decimal a reference was written with: 2.302 stands for 2.3015-2.3025."""
    from decimal import Decimal
    return 0.5 * 10.0 ** min(Decimal(repr(float(v))).as_tuple().exponent for v in values)


def _num(x: float) -> str:
    return f"{x:.3g}"


@dataclass(frozen=True)
class ReferenceVerdict:
    verdict: str
    n: int                                          # seeds, diverged ones included
    interval: tuple[float, float] | None            # where one run of ours falls (one mode only)
    modes: tuple[tuple[float, int], ...] | None     # (centre, seeds); centre NaN: diverged
    reference_mode: int | None = None               # index into modes of the one the reference is in

    def text(self) -> str:
        if self.modes is None:
            if self.interval is None:
                return f"{self.verdict} (n={self.n}, {MIN_SEEDS} needed)"
            low, high = self.interval
            return f"{self.verdict} (one run of ours: {_num(low)}-{_num(high)}, 95% prediction, n={self.n})"
        parts = []
        for i, (centre, count) in enumerate(self.modes):
            seeds = f"{count} of {self.n} seeds" if i == 0 else str(count)
            parts.append(f"{seeds} diverged" if math.isnan(centre) else
                         f"{seeds} near {_num(centre)}" + (" (the reference's)" if i == self.reference_mode else ""))
        return f"{self.verdict} ({', '.join(parts)})"


def _pooled_sd(groups: list[np.ndarray]) -> tuple[float, int]:
    """The sd within groups, pooled, and its degrees of freedom."""
    df = sum(len(g) for g in groups) - len(groups)
    if df < 1:
        return math.nan, df
    return math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / df), df


@lru_cache
def _t_quantile(df: int) -> float:
    return float(stats.t.ppf(0.5 + LEVEL / 2, df))   # cached: scipy takes ~0.1 ms a call, simulations make thousands


def split_modes(values, resolution: float = 0.0) -> list[np.ndarray]:
    """Finite values split into modes: repeatedly at the widest gap between sorted values while that
    gap exceeds SPLIT_GAP x t(0.975, df) x the sd pooled within the groups the split leaves, and
    ``resolution``: seeds stuck at one value have no spread, and a gap finer than the reference can
    tell apart (twice its printed precision) makes no mode of its own (0.116 and 0.117 against 0.1-0.12)."""
    groups = [np.sort(np.asarray(values, dtype=float))]
    while True:
        gaps = [(float(np.diff(g).max()), i) for i, g in enumerate(groups) if len(g) > 1]
        if not gaps:
            return groups
        gap, i = max(gaps)
        at = int(np.diff(groups[i]).argmax()) + 1
        trial = groups[:i] + [groups[i][:at], groups[i][at:]] + groups[i + 1:]
        sd, df = _pooled_sd(trial)
        if df < 1 or not gap > max(SPLIT_GAP * _t_quantile(df) * sd, resolution):
            return groups
        groups = trial


def _prediction_interval(group: np.ndarray, sd: float, df: int) -> tuple[float, float]:
    half = _t_quantile(df) * sd * math.sqrt(1 + 1 / len(group))
    return float(group.mean() - half), float(group.mean() + half)


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def reference_verdict(values, low: float, high: float, slack: float = 0.0) -> ReferenceVerdict:
    """A reference (one run: low == high; several: their range), widened by ``slack`` (its printed
    precision), against the distribution of one run of ours, from our per-seed ``values``."""
    values = np.asarray(values, dtype=float)
    n, reference = len(values), (low - slack, high + slack)
    if n < MIN_SEEDS:
        return ReferenceVerdict(TOO_FEW, n, None, None)
    finite = values[~np.isnan(values)]
    groups = split_modes(finite, 2 * slack) if len(finite) else []
    sd, df = _pooled_sd(groups)
    diverged = n - len(finite)
    if len(groups) == 1 and not diverged:
        interval = _prediction_interval(groups[0], sd, df)
        return ReferenceVerdict(CONSISTENT if _overlaps(reference, interval) else OUTSIDE, n, interval, None)
    modes = tuple((float(np.median(g)), len(g)) for g in groups) + (((math.nan, diverged),) if diverged else ())
    if not groups:
        return ReferenceVerdict(IN_NO_MODE, n, None, modes)
    if df < 1:   # no finite mode has two values to show its spread
        return ReferenceVerdict(TOO_FEW, n, None, modes)
    inside = [i for i, g in enumerate(groups) if _overlaps(reference, _prediction_interval(g, sd, df))]
    if not inside:
        return ReferenceVerdict(IN_NO_MODE, n, None, modes)
    return ReferenceVerdict(IN_MODE, n, None, modes, inside[0])


# ---- claims over resampled seeds ----

_BOUND = re.compile(r"^(<=|>=) (\S+)$|^in \[(\S+), (\S+)\]$|^condition$")


def parse_bound(bound: str) -> tuple[float, float] | None:
    """The range a claim's measured value must lie in, from repro/claims.py's bound text; None for
    "condition" (the claim compares several numbers and has no single bound)."""
    match = _BOUND.match(bound)
    if not match:
        raise ValueError(f"unknown claim bound '{bound}'")
    op, value, low, high = match.groups()
    if op == "<=":
        return -math.inf, float(value)
    if op == ">=":
        return float(value), math.inf
    return (float(low), float(high)) if low is not None else None


@dataclass(frozen=True)
class ClaimUncertainty:
    id: str
    n: int                                  # seeds
    measured: float                         # on all seeds
    interval: tuple[float, float] | None    # 95% percentile interval over resamples; None: no finite value
    support: float                          # share of resamples in which the claim holds
    spread: float                           # sd of the resampled values; 0: the value does not depend on seeds
    settled: bool
    seeds_needed: int | None                # estimate for an unsettled claim; None where none can be made


def _seeds_to_settle(n: int, ratio: float) -> int | None:
    """The interval's half-width scales as 1/sqrt(n): it shrinks by ``ratio`` at n·ratio² seeds."""
    return math.ceil(n * ratio ** 2) if math.isfinite(ratio) else None


def _uncertainty(claim: dict, n: int, measured: np.ndarray, holds: np.ndarray) -> ClaimUncertainty:
    finite = measured[np.isfinite(measured)]
    ends = [50 * (1 - LEVEL), 50 * (1 + LEVEL)]
    interval = tuple(float(v) for v in np.percentile(finite, ends)) if len(finite) else None
    support, spread = float(holds.mean()), float(finite.std()) if len(finite) else math.nan
    value = math.nan if claim["measured"] is None else float(claim["measured"])
    bound = parse_bound(claim["bound"])
    needed = None
    if bound is None or interval is None:
        settled = not (1 - LEVEL) < support < LEVEL
        if not settled and support != 0.5:   # the support as a normal tail: its z-score grows as sqrt(n)
            needed = _seeds_to_settle(n, stats.norm.ppf(LEVEL) / abs(stats.norm.ppf(support)))
    else:
        straddled = [b for b in bound if interval[0] <= b <= interval[1]]
        # a resample without a value fails the claim (repro/claims.py): too many, and it is not settled
        settled = not straddled and len(finite) / len(measured) >= 1 - (1 - LEVEL) / 2
        distance = min((abs(value - b) for b in straddled), default=math.nan)
        if straddled and distance > 0:
            needed = _seeds_to_settle(n, (interval[1] - interval[0]) / 2 / distance)
    return ClaimUncertainty(claim["id"], n, value, interval, support, spread, settled, needed)


def bootstrap_claims(judge, seeds: list[int], n_resamples: int = 1000,
                     rng_seed: int = 0) -> dict[str, ClaimUncertainty]:
    """Each claim's uncertainty over seeds. ``judge(seed_list)`` re-judges the experiment's claims on
    the run's trials of ``seed_list`` (sorted; a seed may repeat) and returns its claim dicts."""
    seeds = sorted(seeds)
    rng = np.random.default_rng(rng_seed)
    resamples = [tuple(sorted(seeds[i] for i in row)) for row in rng.integers(0, len(seeds), (n_resamples, len(seeds)))]
    judged = {}   # claims depend on which seeds a resample holds, not their order: judge each multiset once
    for resample in resamples + [tuple(seeds)]:
        if resample not in judged:
            judged[resample] = {c["id"]: c for c in judge(list(resample))}
    out = {}
    for claim in judged[tuple(seeds)].values():
        rows = [judged[r].get(claim["id"]) for r in resamples]
        measured = np.array([math.nan if c is None or c["measured"] is None else float(c["measured"]) for c in rows])
        holds = np.array([c is not None and bool(c["holds"]) for c in rows])
        out[claim["id"]] = _uncertainty(claim, len(seeds), measured, holds)
    return out


def uncertainty_text(u: ClaimUncertainty) -> str:
    """A claim's measured value with its uncertainty, for one printed line."""
    value, holds = f"measured {u.measured:.4g}", f"holds in {u.support:.0%} of resamples"
    if u.interval is None:
        return f"{value} ({holds}; no resample gave a value)"
    if u.spread == 0:
        return f"{value} (the same on every resample of seeds, {holds})"
    ci = f"95% CI {_num(u.interval[0])}-{_num(u.interval[1])} over seeds"
    if u.settled:
        return f"{value} ({ci}, {holds})"
    needed = (f"~{u.seeds_needed} seeds would settle it, an estimate" if u.seeds_needed
              else "no estimate of the seeds needed")
    return f"{value}, not settled at n={u.n} ({ci}, {holds}; {needed})"


# ---- the runner's and the readers' side ----

def claim_uncertainties(run, claims_of, n_resamples: int = 1000) -> dict[str, dict]:
    """Claim id -> its uncertainty over the run's seeds (a dict, as results files carry it): the
    experiment's ``claims_of(run)`` re-judged on bootstrap resamples of ``run`` (repro.results.Run).
    Under MIN_SEEDS seeds every claim gets {"n": n} alone: too few for an interval."""
    seeds = sorted({t.seed for t in run.trials})
    if len(seeds) < MIN_SEEDS:
        return {c.id: {"n": len(seeds)} for c in run.claims}
    found = bootstrap_claims(lambda chosen: [c.to_dict() for c in claims_of(run.with_seeds(chosen))], seeds,
                             n_resamples)
    return {cid: {k: v for k, v in u.__dict__.items() if k not in ("id", "measured")} for cid, u in found.items()}


def claim_text(claim) -> str:
    """A saved claim's measured value, its bound and its uncertainty over seeds: the one wording the
    printed table, the report and the API use. An analytic claim involves no seeds and is exact."""
    text = f"measured {claim.measured:.4g} ({claim.bound})"
    u = claim.uncertainty
    if claim.kind == "analytic" or u is None:
        return text
    if "support" not in u:
        return f"{text}; n={u['n']} seeds: too few for an interval ({MIN_SEEDS} needed)"
    holds = f"holds in {u['support']:.0%} of resamples"
    if u["spread"] == 0:  # extras computed once for all seeds, or an outcome every seed shares
        return (f"{text}; the same in every resample of the {u['n']} seeds (computed from outputs that are not "
                f"per seed, or shared by every seed), {holds}")
    ci = f"95% CI {_num(u['interval'][0])}-{_num(u['interval'][1])} over {u['n']} seeds" if u.get("interval") \
        else "no resample gave a value"
    if u["settled"]:
        return f"{text}; {ci}, {holds}"
    needed = (f"~{u['seeds_needed']} seeds would settle it (an estimate)" if u.get("seeds_needed")
              else "no estimate of the seeds that would settle it")
    return f"{text}; not settled at n={u['n']}: {ci}, {holds}; {needed}"


def settled(claim) -> bool | None:
    """False where the claim's interval over seeds straddles its bound; None where too few seeds tell."""
    u = claim.uncertainty
    if claim.kind == "analytic" or u is None:
        return True
    return u["settled"] if "settled" in u else None
