"""Claim: one checkable statement about results, carrying its measured value and verdict."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class Claim:
    statement: str      # the phenomenon in words, as the notes or the book put it
    measured: float     # the number it was judged on
    bound: str          # what that number had to satisfy, e.g. "<= 0.2"
    holds: bool
    detail: str = ""    # how the number was obtained (variant, metric, seeds)

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(x: float) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def at_most(statement: str, measured: float, bound: float, detail: str = "") -> Claim:
    return Claim(statement, measured, f"<= {bound:g}", _finite(measured) and measured <= bound, detail)


def at_least(statement: str, measured: float, bound: float, detail: str = "") -> Claim:
    return Claim(statement, measured, f">= {bound:g}", _finite(measured) and measured >= bound, detail)


def between(statement: str, measured: float, low: float, high: float, detail: str = "") -> Claim:
    return Claim(statement, measured, f"in [{low:g}, {high:g}]",
                 _finite(measured) and low <= measured <= high, detail)


def is_true(statement: str, condition: bool, measured: float, detail: str = "") -> Claim:
    """For claims that compare several numbers: ``measured`` is the deciding one (a margin, a count)."""
    return Claim(statement, measured, "condition", bool(condition), detail)
