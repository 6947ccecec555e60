"""Claim: one checkable statement about results, carrying its measured value and verdict.

A claim's ``id`` is its stable name within its experiment (the audit of the notes and the tests
refer to it); the ``statement`` is for readers and can be reworded freely.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass
class Claim:
    id: str             # e.g. "relu-he-best": lower case, digits, '-' and '.'
    statement: str      # the phenomenon in words, as the notes or the book put it
    measured: float     # the number it was judged on
    bound: str          # what that number had to satisfy, e.g. "<= 0.2"
    holds: bool
    detail: str = ""    # how the number was obtained (variant, metric, seeds)

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"claim id '{self.id}' must be lower case letters, digits, '-' or '.'")

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(x: float) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def at_most(id: str, statement: str, measured: float, bound: float, detail: str = "") -> Claim:
    return Claim(id, statement, measured, f"<= {bound:g}", _finite(measured) and measured <= bound, detail)


def at_least(id: str, statement: str, measured: float, bound: float, detail: str = "") -> Claim:
    return Claim(id, statement, measured, f">= {bound:g}", _finite(measured) and measured >= bound, detail)


def between(id: str, statement: str, measured: float, low: float, high: float, detail: str = "") -> Claim:
    return Claim(id, statement, measured, f"in [{low:g}, {high:g}]", _finite(measured) and low <= measured <= high, detail)


def is_true(id: str, statement: str, condition: bool, measured: float, detail: str = "") -> Claim:
    """For claims that compare several numbers: ``measured`` is the deciding one (a margin, a count)."""
    return Claim(id, statement, measured, "condition", bool(condition), detail)
