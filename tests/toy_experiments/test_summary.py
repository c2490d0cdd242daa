"""Verdicts of the toy study on planted records: each claim can come out HOLDS, DOES NOT HOLD, MIXED or
INCONCLUSIVE, and the printed line carries the word, the counts and the rule."""

from __future__ import annotations

import pytest

from toy_experiments.summary import VERDICT_RULE, verdict_results, verdict_word, verdicts

TASKS = ("transport", "gaussian")
LAMS = (0.0, 0.01, 0.1)
SEEDS = (0, 1, 2)
# (residual value, plain value) where the residual-vs-plain claim is true; the λ trend adds ∓ step·rank(λ)
PLANTED = {
    "lss": (1.1, 3.0, -0.1),
    "energy_ratio": (1.5, 3.0, -0.1),
    "map_uvp": (10.0, 50.0, -1.0),
    "ots": (0.6, 0.1, 0.1),
}


def _records(truth, fit=lambda net, rank: True):
    """A grid where every claim is true on the (task, seed) cells with ``truth(task, seed)`` and false elsewhere."""
    recs = []
    for task in TASKS:
        for seed in SEEDS:
            ok = truth(task, seed)
            for net in ("residual", "plain"):
                for rank, lam in enumerate(LAMS):
                    rec = dict(task=task, n_blocks=4, width=8, lam=lam, seed=seed, net=net, kind="grid")
                    for key, (res, plain, step) in PLANTED.items():
                        base = (res if net == "residual" else plain) if ok else (plain if net == "residual" else res)
                        rec[key] = base + (step if ok else -step) * rank
                    rec["fit"] = fit(net, rank)
                    rec["w2sq_to_target"], rec["accuracy"] = 0.05 + 0.01 * rank, None
                    recs.append(rec)
    return recs


def _words(records) -> dict:
    return {v.claim: (v.word, {t: c.word for t, c in v.per_task.items()}) for v in verdict_results(records)}


METRIC_CLAIMS = (
    "residual LSS below plain",
    "residual OTS above plain",
    "residual energy ratio closer to 1",
    "residual closer to the exact OT map than plain (map UVP lower)",
    *(
        f"{net}: {c}"
        for net in ("residual", "plain")
        for c in (
            "LSS falls as λ grows",
            "energy ratio falls as λ grows",
            "OTS rises as λ grows",
            "distance to the exact OT map (map UVP) falls as λ grows",
        )
    ),
)


@pytest.mark.parametrize(
    "truth, word, per_task",
    [
        (lambda task, seed: True, "HOLDS", ("HOLDS", "HOLDS")),
        (lambda task, seed: False, "DOES NOT HOLD", ("DOES NOT HOLD", "DOES NOT HOLD")),
        (lambda task, seed: task == "transport", "MIXED", ("HOLDS", "DOES NOT HOLD")),  # tasks disagree
        (lambda task, seed: seed != 2, "MIXED", ("MIXED", "MIXED")),  # true in 2/3 of the pairs of each task
    ],
)
def test_each_claim_comes_out_as_planted(truth, word, per_task):
    words = _words(_records(truth))
    assert set(METRIC_CLAIMS) <= set(words)
    for claim in METRIC_CLAIMS:
        assert words[claim] == (word, dict(zip(TASKS, per_task))), claim
    for net in ("residual", "plain"):  # every run fits: the fit is kept
        assert words[f"{net}: fit to the target is kept as λ grows (the run at λ' fits too)"][0] == "HOLDS"


def test_too_few_fitted_pairs_are_inconclusive_and_a_lost_fit_does_not_hold():
    # plain nets fit only at the smallest λ: 3 of 9 residual/plain pairs per task can be tested
    words = _words(_records(lambda task, seed: True, fit=lambda net, rank: net == "residual" or rank == 0))
    assert words["residual LSS below plain"] == ("INCONCLUSIVE", dict.fromkeys(TASKS, "INCONCLUSIVE"))
    assert words["plain: LSS falls as λ grows"][0] == "INCONCLUSIVE"
    assert words["residual: LSS falls as λ grows"][0] == "HOLDS"
    assert words["plain: fit to the target is kept as λ grows (the run at λ' fits too)"][0] == "DOES NOT HOLD"
    assert words["residual: fit to the target is kept as λ grows (the run at λ' fits too)"][0] == "HOLDS"


def test_printed_lines_carry_the_rule_the_word_and_the_counts():
    lines = verdicts(_records(lambda task, seed: task == "transport"))
    assert lines[0] == VERDICT_RULE and "80 %" in lines[0] and "INCONCLUSIVE" in lines[0]
    lss = next(line for line in lines if line.startswith("residual LSS below plain"))
    assert lss.startswith("residual LSS below plain: MIXED: true in 9/18 ") and "of 18;" in lss
    assert "transport HOLDS 9/9 (1 vs 2.9)" in lss and "gaussian DOES NOT HOLD 0/9" in lss
    uvp = next(line for line in lines if line.startswith("residual: distance to the exact OT map"))
    assert "λ=0 → λ=0.1" in uvp and "transport HOLDS 9/9 (10 → 8)" in uvp


def test_verdict_word_thresholds_and_bad_counts():
    assert verdict_word(4, 5, 5) == "HOLDS" and verdict_word(1, 5, 5) == "DOES NOT HOLD"
    assert verdict_word(3, 5, 5) == "MIXED" and verdict_word(0, 0, 0) == "INCONCLUSIVE"
    assert verdict_word(2, 2, 2) == "INCONCLUSIVE"  # fewer than 3 tested pairs
    assert verdict_word(4, 4, 9) == "INCONCLUSIVE"  # fewer than half the candidates tested
    with pytest.raises(ValueError, match="wins ≤ tested"):
        verdict_word(3, 2, 5)
