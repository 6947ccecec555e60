"""Claim: one checkable statement about results, carrying its measured value and verdict.

A claim's ``id`` is its stable name within its experiment (the audit of the notes and the tests
refer to it); the ``statement`` is for readers and can be reworded freely.

Every claim declares its ``kind``, which says whether it should survive a change of setup
(``python -m repro generalise`` re-checks those under other datasets, widths, batch sizes, seeds):
a PHENOMENON is a relation meant to hold beyond the reference setting (an ordering, a ratio, a
margin, "stays at chance"), a FIGURE is a number tied to the reference setup ("reaches 0.95 on
MNIST"), and ANALYTIC is a property of the mathematics or of a layer, measured without training
on synthetic input, which no change of the training setup reaches.

A claim that the run's setup cannot judge (a phenomenon of the book's 2000 iterations, measured in
a 1000-iteration quick run) says what it ``needs``: it is shown with its value but counted neither
as holding nor as failing. ``verdict`` is the one place that decides what a run, the report, the
audit and the tests call a claim.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
PHENOMENON, FIGURE, ANALYTIC = "phenomenon", "figure", "analytic"
CLAIM_KINDS = (PHENOMENON, FIGURE, ANALYTIC)


@dataclass
class Claim:
    id: str             # e.g. "relu-he-best": lower case, digits, '-' and '.'
    kind: str           # PHENOMENON, FIGURE or ANALYTIC (see the module docstring)
    statement: str      # the phenomenon in words, as the notes or the book put it
    measured: float     # the number it was judged on
    bound: str          # what that number had to satisfy, e.g. "<= 0.2"
    holds: bool
    detail: str = ""    # how the number was obtained (variant, metric, seeds)
    needs: str = ""     # set where this run cannot judge it: what would (e.g. "the book's 2000 iterations")
    uncertainty: dict | None = None   # over resampled seeds (repro.uncertainty.ClaimUncertainty), set by the runner

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"claim id '{self.id}' must be lower case letters, digits, '-' or '.'")
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim '{self.id}': kind '{self.kind}' is not one of {', '.join(CLAIM_KINDS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def verdict(self) -> str:
        return verdict(self)


HOLDS, FAILS, NOT_JUDGED = "holds", "fails", "not judged"


def verdict(claim: Claim) -> str:
    """HOLDS, FAILS or NOT_JUDGED: the one place that decides what a claim is called."""
    if claim.needs:
        return NOT_JUDGED
    return HOLDS if claim.holds else FAILS


def judged(claims: list[Claim]) -> list[Claim]:
    return [c for c in claims if verdict(c) != NOT_JUDGED]


def failing(claims: list[Claim]) -> list[Claim]:
    return [c for c in claims if verdict(c) == FAILS]


def count_text(claims: list[Claim]) -> str:
    """How the claims came out, as every summary says it: 'all 9 claims hold', '1 of 9 claims
    fails', each followed by how many this run could not judge."""
    from .tables import plural
    n, bad = len(judged(claims)), len(failing(claims))
    if bad:
        text = "the one claim fails" if n == 1 else f"{bad} of {n} claims {'fails' if bad == 1 else 'fail'}"
    else:
        text = "no claim judged" if n == 0 else "the one claim holds" if n == 1 else f"all {n} claims hold"
    unjudged = len(claims) - n
    return text + (f"; {plural(unjudged, 'claim')} not judged at this preset" if unjudged else "")


def _finite(x: float) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def at_most(id: str, kind: str, statement: str, measured: float, bound: float, detail: str = "", needs: str = "") -> Claim:
    return Claim(id, kind, statement, measured, f"<= {bound:g}", _finite(measured) and measured <= bound, detail, needs)


def at_least(id: str, kind: str, statement: str, measured: float, bound: float, detail: str = "", needs: str = "") -> Claim:
    return Claim(id, kind, statement, measured, f">= {bound:g}", _finite(measured) and measured >= bound, detail, needs)


def between(id: str, kind: str, statement: str, measured: float, low: float, high: float, detail: str = "",
            needs: str = "") -> Claim:
    return Claim(id, kind, statement, measured, f"in [{low:g}, {high:g}]", _finite(measured) and low <= measured <= high,
                 detail, needs)


def is_true(id: str, kind: str, statement: str, condition: bool, measured: float, detail: str = "", needs: str = "") -> Claim:
    """For claims that compare several numbers: ``measured`` is the deciding one (a margin, a count)."""
    return Claim(id, kind, statement, measured, "condition", bool(condition), detail, needs)
