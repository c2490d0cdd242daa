"""The rules that turn per-seed numbers into a verdict, one rule per kind of claim.

Every verdict is one of ``HOLDS``, ``DOES NOT HOLD``, ``INCONCLUSIVE`` (with the reason),
``MIXED`` (holds somewhere, fails elsewhere) or ``NOT MEASURED``, and carries the rule it applied.

* :func:`direction` — a claimed difference ("A < B"): per seed ``d_s = A_s − B_s`` over the seeds
  both have (same-seed pairs). It needs at least :data:`MIN_SEEDS` seeds, and an effect
  ``|mean(d)| > 2 · std(d)`` (sample std over seeds). Then it HOLDS when ``mean(d) < 0`` and DOES
  NOT HOLD when ``mean(d) > 0``; an exact tie (every ``d_s = 0``) DOES NOT HOLD; anything else is
  INCONCLUSIVE (the effect is within twice the seed spread).
* :func:`band` — a claimed magnitude ("LSS ≈ 1.12", "64-98 %"): with at least :data:`MIN_SEEDS`
  seeds, HOLDS when ``mean ± 2 std`` lies inside the band, DOES NOT HOLD when it lies entirely
  outside, INCONCLUSIVE when it straddles an edge.
* :func:`combine` — a claim made "at every λ": HOLDS if it holds at every λ, DOES NOT HOLD if it
  fails at some and holds at none, MIXED if it holds at some and fails at others, INCONCLUSIVE if
  it holds at some and is undecided at the rest. A λ run with fewer than :data:`MIN_SEEDS` seeds is
  *not judged* when other λ have enough (a grid may run seeds 1-2 at a few λ only, as the
  converged CIFAR grids do): the verdict then covers the λ judged and says so in its ``scope``
  ("4 of 9 λ"); with no λ judged it stays INCONCLUSIVE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Verdict", "MIN_SEEDS", "direction", "band", "combine", "not_measured"]

MIN_SEEDS = 3
HOLDS, FAILS, UNSURE, MIXED, NONE = "HOLDS", "DOES NOT HOLD", "INCONCLUSIVE", "MIXED", "NOT MEASURED"
DIRECTION_RULE = f"same-seed differences; ≥ {MIN_SEEDS} seeds and |mean| > 2 × seed std (ddof=1)"
BAND_RULE = f"≥ {MIN_SEEDS} seeds; mean ± 2 × seed std inside the band holds, entirely outside fails"


@dataclass(frozen=True)
class Verdict:
    """A verdict word, what was measured, and the rule that decided it."""

    word: str
    text: str
    rule: str = ""
    seeds: int | None = None  # how many seeds the verdict stands on (direction, band)
    scope: str = ""  # what a combined verdict covers when some λ were not judged, e.g. "4 of 9 λ"
    caveat: str = ""  # a short warning shown beside the word, e.g. "OTS saturated"

    @property
    def decided(self) -> bool:
        return self.word in (HOLDS, FAILS, MIXED)

    @property
    def too_few_seeds(self) -> bool:
        return self.word == UNSURE and self.seeds is not None and self.seeds < MIN_SEEDS

    @property
    def label(self) -> str:
        """The word with its scope and caveat: ``HOLDS (4 of 9 λ)``, ``HOLDS (OTS saturated)``."""
        extra = "; ".join(x for x in (self.scope, self.caveat) if x)
        return f"{self.word} ({extra})" if extra else self.word


def not_measured(why: str) -> Verdict:
    return Verdict(NONE, why)


def _finite(v) -> bool:
    return v is not None and not isinstance(v, bool) and math.isfinite(v)


def direction(
    a: dict, b: dict, *, scale_b: float = 1.0, shift: float = 0.0, fmt: str = ".3g", names=("a", "b")
) -> Verdict:
    """Claim ``a < scale_b · b + shift`` per seed (``a``, ``b``: seed → value; ``names`` name them in
    the text when ``scale_b`` or ``shift`` make the difference other than ``a − b``)."""
    seeds = sorted(s for s in a if s in b and _finite(a[s]) and _finite(b[s]))
    d = np.array([a[s] - (scale_b * b[s] + shift) for s in seeds], dtype=float)
    n = len(d)
    if n == 0:
        return not_measured("no same-seed pair")
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    if sd <= 1e-12 * max(1.0, float(np.abs(d).max())):  # equal differences up to rounding
        sd = 0.0
    if abs(mean) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        mean = 0.0
    text = f"mean difference {mean:+{fmt}} (seed std {sd:{fmt}}, n={n})" if n > 1 else f"difference {mean:+{fmt}} (n=1)"
    if scale_b != 1.0 or shift != 0.0:  # say what was differenced: the shifted value is easy to misread
        a_name, b_name = names
        text += f" of {a_name} − ({scale_b:g} × {b_name} {'+' if shift >= 0 else '−'} {abs(shift):g}), claimed < 0"
    if n < MIN_SEEDS:
        return Verdict(UNSURE, f"{text}: {n} seed(s) < {MIN_SEEDS}", DIRECTION_RULE, n)
    if mean == 0 and sd == 0:
        return Verdict(FAILS, f"{text}: no difference at all", DIRECTION_RULE, n)
    if abs(mean) > 2 * sd:
        z = "∞" if sd == 0 else f"{abs(mean) / sd:.1f}"
        return Verdict(HOLDS if mean < 0 else FAILS, f"{text}, {z} seed std", DIRECTION_RULE, n)
    return Verdict(UNSURE, f"{text}: within 2 seed std", DIRECTION_RULE, n)


def band(values, lo: float, hi: float, *, fmt: str = ".3g") -> Verdict:
    """Claim that the values lie in ``[lo, hi]`` (values: one per seed)."""
    v = np.array([x for x in values if _finite(x)], dtype=float)
    n = len(v)
    if n == 0:
        return not_measured("no value")
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else float("nan")
    text = f"{mean:{fmt}} ± {sd:{fmt}} (n={n}) vs [{lo:{fmt}}, {hi:{fmt}}]"
    if n < MIN_SEEDS:
        return Verdict(UNSURE, f"{text}: {n} seed(s) < {MIN_SEEDS}", BAND_RULE, n)
    low, high = mean - 2 * sd, mean + 2 * sd
    if lo <= low and high <= hi:
        return Verdict(HOLDS, text, BAND_RULE, n)
    if high < lo or low > hi:
        return Verdict(FAILS, text, BAND_RULE, n)
    return Verdict(UNSURE, f"{text}: mean ± 2 std straddles the band", BAND_RULE, n)


def combine(parts: list[tuple[str, Verdict]], *, unit: str = "λ") -> Verdict:
    """A claim made at several λ (``parts``: label → verdict; ``unit`` names them in the scope); see the
    module docstring."""
    parts = [(lab, v) for lab, v in parts if v.word != NONE]
    if not parts:
        return not_measured("no λ with data")
    judged = [(lab, v) for lab, v in parts if not v.too_few_seeds]
    skipped = [lab for lab, v in parts if v.too_few_seeds] if judged else []
    parts = judged or parts
    words = [v.word for _, v in parts]
    n = len(parts)
    counts = ", ".join(f"{w} at {words.count(w)}/{n}" for w in (HOLDS, FAILS, UNSURE) if words.count(w))
    detail = "; ".join(f"{lab}: {v.word} ({v.text})" for lab, v in parts)
    h, f = words.count(HOLDS), words.count(FAILS)
    if h == n:
        word = HOLDS
    elif h and f:
        word = MIXED
    elif f:
        word = FAILS
    else:
        word = UNSURE
    rule = parts[0][1].rule + f"; at {'every λ' if unit == 'λ' else 'all ' + unit}: all must hold"
    if not skipped:
        return Verdict(word, f"{counts} — {detail}", rule)
    scope = f"{n} of {n + len(skipped)} {unit}"
    why = f"not judged at {', '.join(skipped)} (fewer than {MIN_SEEDS} seeds)"
    return Verdict(word, f"{counts} — {detail}; {why}", rule + f" with ≥ {MIN_SEEDS} seeds", scope=scope)
