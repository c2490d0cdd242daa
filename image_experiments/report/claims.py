"""The paper's headline claims (SPEC §7), each split into sub-claims with one rule each.

Every sub-claim is judged on same-seed numbers by the rules of :mod:`.stats` (≥ 3 seeds and an
effect beyond twice the seed std, or INCONCLUSIVE), never by adding wins across sub-claims. A claim
the paper makes "at every λ" is judged per λ and combined (:func:`.stats.combine`). Magnitudes are
tested where the paper gives them (claims 3 and 4). Where our data differ from the paper's (another
data set, fewer epochs), the sub-claim's text says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

from image_experiments.report.stats import UNSURE, Verdict, band, combine, direction, not_measured

__all__ = ["claims", "SubClaim", "CLAIM4_LAMBDA"]

CLAIM4_LAMBDA = 1e-3  # SPEC §6: the MNIST λ is unknown; its default is 1e-3
CLAIM4_NEAR = 0.5  # the λ judged: the nearest to CLAIM4_LAMBDA within half a decade (λ = 0 never)
CLAIM4_LSS = (1.12 * 0.9, 1.12 * 1.1)  # "LSS ≈ 1.12": within 10 %
CLAIM4_OTS = (0.92, 1.0)  # "OTS ≈ 0.96": within 0.04
CLAIM3_SHARE = (0.64, 0.98)
CLAIM2_DROP, CLAIM2_JUMP = 0.8, 10.0  # "sharply": mid LSS ≤ 80 % of low LSS; "jumps": ≥ 10 points
CLAIM6_FLAT = 5.0  # "about unchanged": mean drop over the 10-50 % part within ±5 points

SubClaim = tuple  # (label, statement, Verdict)


def _main(settings: dict, *, heads: tuple = ("linear",)):
    """The settings a claim is judged on: SPEC's nets (Table 1 width) with a head in ``heads``.

    Side studies feed only their own sub-claims: the width study (``width`` set) claim 7c, the
    σ(BN) head check (``head=bn-relu``) claim 3, the claim it was run for.
    """
    return [s for s in settings.values() if s["fields"].get("width") is None and s["fields"]["head"] in heads]


def _by_seed(runs, key) -> dict:
    return {r["config"]["seed"]: r["values"].get(key) for r in runs}


def _cells(s: dict, arch: str) -> dict:
    """λ → runs of one net in a setting."""
    return {wd: c["runs"] for (a, wd), c in s["cells"].items() if a == arch}


def _pairs(s: dict):
    """(λ, resnet runs, plain runs) for every λ where both nets were run."""
    r, p = _cells(s, "resnet"), _cells(s, "plain")
    return [(wd, r[wd], p[wd]) for wd in sorted(r) if wd in p]


def _per_lambda(s, key, *, resnet_less: bool) -> Verdict:
    parts = []
    for wd, rr, pp in _pairs(s):
        a, b = _by_seed(rr, key), _by_seed(pp, key)
        parts.append((f"λ={wd:g}", direction(a, b) if resnet_less else direction(b, a)))
    return combine(parts)


def _learned(s, arch, key, *, lower: bool) -> Verdict:
    """Trained below (``lower``) or above its same-seed untrained net, at every λ."""
    parts = []
    for wd, rs in sorted(_cells(s, arch).items()):
        t, u = _by_seed(rs, key), _by_seed(rs, f"{key}_untrained")
        parts.append((f"λ={wd:g}", direction(t, u) if lower else direction(u, t)))
    return combine(parts)


def _claim1(settings) -> list:
    out = []
    for s in _main(settings):
        if s["fields"]["k"] != 4:
            continue
        t = s["title"]
        out += [
            ("1a", f"{t}: ResNet LSS < plain LSS at every λ", _per_lambda(s, "lss", resnet_less=True)),
            ("1b", f"{t}: ResNet OTS > plain OTS at every λ", _per_lambda(s, "ots", resnet_less=False)),
            ("1c", f"{t}: ResNet test accuracy > plain at every λ", _per_lambda(s, "test_acc", resnet_less=False)),
            ("1d", f"{t}: ResNet LSS below its untrained net's at every λ", _learned(s, "resnet", "lss", lower=True)),
        ]
    return out or [("1", "K=4 runs", not_measured("no K=4 runs (CIFAR K=4 needs a GPU)"))]


def _group_means(runs_by_wd: dict, lo: float, hi: float, key: str) -> tuple[dict, list]:
    """Per seed, the mean of ``key`` over the λ in [lo, hi] that are run with the most seeds, and those λ.

    Every seed's mean is over the same λ: a grid with seed 0 at every λ and seeds 1-2 at a few would
    otherwise average seed 0 over more λ than the others and count the difference as seed spread.
    """
    at = {wd: {s: v for s, v in _by_seed(rs, key).items() if v is not None} for wd, rs in runs_by_wd.items()}
    at = {wd: vs for wd, vs in at.items() if lo <= wd <= hi and vs}
    if not at:
        return {}, []
    most = max(len(vs) for vs in at.values())
    lams = sorted(wd for wd, vs in at.items() if len(vs) == most)
    acc = defaultdict(list)
    for wd in lams:
        for seed, v in at[wd].items():
            acc[seed].append(v)
    return {seed: sum(v) / len(v) for seed, v in acc.items() if len(v) == len(lams)}, lams


def _lams(lams: list) -> str:
    return "λ∈{" + ", ".join(f"{wd:g}" for wd in lams) + "}"


def _at_the_end(s: dict, cells: dict, lams: list, v: Verdict) -> Verdict:
    """A claim about the end of training cannot be decided on runs still learning: in a ``converged``
    setting, a decided verdict that compares a run (at the λ in ``lams``) whose training accuracy still
    rises over its last epochs (:func:`.collect.still_rising`) reads INCONCLUSIVE."""
    if not str(s["fields"].get("profile")).startswith("converged") or not v.decided:
        return v
    runs = [r for wd in lams for r in cells.get(wd, [])]
    rising = sum(bool(r["values"].get("still_rising")) for r in runs)
    if not rising:
        return v
    why = f"{rising} of these {len(runs)} runs still rising at the end of training: not at convergence"
    return replace(v, word=UNSURE, text=f"{v.text}; would read {v.word}, but {why}")


def _claim2_parts(s: dict, arch: str) -> list:
    """Sub-claims 2x1-2x3 of one net: LSS and training accuracy, group means over λ (:func:`_group_means`)."""
    cells = _cells(s, arch)
    (lss_lo, l_lo), (acc_lo, a_lo) = (_group_means(cells, 0, 1e-3, k) for k in ("lss", "train_acc"))
    (lss_mid, l_mid), (acc_mid, a_mid) = (_group_means(cells, 5e-3, 1e-2, k) for k in ("lss", "train_acc"))
    acc_hi, a_hi = _group_means(cells, 5e-2, math.inf, "train_acc")
    drop = direction(lss_mid, lss_lo, scale_b=CLAIM2_DROP, names=("LSS(5e-3-1e-2)", "LSS(≤1e-3)"))
    jump = direction(acc_lo, acc_mid, shift=-CLAIM2_JUMP, names=("acc(≤1e-3)", "acc(5e-3-1e-2)"))
    fall = direction(acc_hi, acc_mid) if acc_hi else not_measured("no run at λ ≥ 5e-2")
    t = f"{s['title']}, {arch}"
    return [
        (
            f"{t}: LSS at 5e-3-1e-2 ≤ {CLAIM2_DROP:g} × LSS at λ ≤ 1e-3 (a sharp drop)",
            _at_the_end(s, cells, l_lo + l_mid, _on(drop, l_mid, l_lo)),
        ),
        (
            f"{t}: training accuracy at 5e-3-1e-2 ≥ {CLAIM2_JUMP:g} points above λ ≤ 1e-3 (a jump)",
            _at_the_end(s, cells, a_lo + a_mid, _on(jump, a_lo, a_mid)),
        ),
        (
            f"{t}: training accuracy lower again at λ ≥ 5e-2 than at 5e-3-1e-2",
            _at_the_end(s, cells, a_hi + a_mid, _on(fall, a_hi, a_mid)) if acc_hi else fall,
        ),
    ]


def _on(v: Verdict, lams_a: list, lams_b: list) -> Verdict:
    """Say which λ each side of a group comparison averaged."""
    return replace(v, text=f"on {_lams(lams_a)} vs {_lams(lams_b)}: {v.text}")


def _claim2(settings) -> list:
    out = []
    for s in _main(settings):
        f = s["fields"]
        if f["k"] != 1 or f["dataset"] == "mnist":
            continue
        for arch, tag in (("plain", "a"), ("resnet", "b")):
            out += [(f"2{tag}{i}", text, v) for i, (text, v) in enumerate(_claim2_parts(s, arch), start=1)]
    return out or [("2", "CIFAR K=1 runs", not_measured("no CIFAR K=1 runs"))]


def _claim3(settings) -> list:
    out = []
    for s in _main(settings, heads=("linear", "bn-relu")):
        f = s["fields"]
        if f["k"] != 1 or f["dataset"] == "mnist":
            continue
        cells = {wd: rs for wd, rs in _cells(s, "plain").items() if 5e-3 <= wd <= 0.1}
        if not cells:
            continue
        t = s["title"] + ("" if f["dataset"] == "cifar100" else " (the paper's is CIFAR-100)")
        shares = combine(
            [(f"λ={wd:g}", band(_by_seed(rs, "last_share").values(), *CLAIM3_SHARE)) for wd, rs in cells.items()]
        )
        lsr = combine(
            [(f"λ={wd:g}", direction(_by_seed(rs, "lsr"), _by_seed(rs, "lss"))) for wd, rs in sorted(cells.items())]
        )
        out.append(("3a", f"{t}: plain last-segment share in 64-98 % at every 5e-3 ≤ λ ≤ 0.1", shares))
        out.append(("3b", f"{t}: plain LSR < plain LSS at every 5e-3 ≤ λ ≤ 0.1", lsr))
    return out or [("3", "CIFAR K=1 plain runs", not_measured("no CIFAR K=1 plain runs with 5e-3 ≤ λ ≤ 0.1"))]


_CLAIM4_TEXTS = (
    ("4a", "LSS ≈ 1.12 (within 10 %)"),
    ("4b", "OTS ≈ 0.96 (within 0.04)"),
    ("4c", "LSS below the untrained net's"),
    ("4d", "OTS above the untrained net's"),
    ("4e", "OTS above the shuffled-displacement null"),
    ("4f", "tracks straighten over training (probe LSS at the last epoch < epoch 1)"),
)


OTS_SATURATED = 0.99  # every value of both sides at or above this: OTS cannot separate them


def _saturated(v: Verdict, ots: dict, null: dict, name: str) -> Verdict:
    """Say so in the text when the trained net's OTS and the null's are all at the ceiling: any
    map that moves points by short steps scores OTS ≈ 1 in high dimension (README), so the verdict,
    whatever its word, is no evidence of a geodesic; the LSS rows are the ones to read."""
    both = [x for x in (*ots.values(), *null.values()) if x is not None]
    if not both or min(both) < OTS_SATURATED:
        return v
    note = (
        f"OTS saturated: the trained net and {name} all score ≥ {OTS_SATURATED:g}, as any near-identity map does here"
    )
    return replace(v, text=f"{v.text} ({note})", caveat="OTS saturated")


def _claim4(settings) -> list:
    out = []
    for s in _main(settings):
        if s["fields"]["dataset"] != "mnist":
            continue
        cells = _cells(s, "resnet")
        if not cells:
            continue
        near = [w for w in cells if w > 0 and abs(math.log10(w / CLAIM4_LAMBDA)) <= CLAIM4_NEAR]
        if not near:  # λ = 0 or a far λ never stands in for the paper's
            t = f"{s['title']}, ResNet at λ={CLAIM4_LAMBDA:g}"
            why = not_measured(f"no ResNet runs within a factor {10**CLAIM4_NEAR:.1f} of λ={CLAIM4_LAMBDA:g} yet")
            out += [(lab, f"{t}: {text}", why) for lab, text in _CLAIM4_TEXTS]
            continue
        wd = min(near, key=lambda w: abs(math.log10(w / CLAIM4_LAMBDA)))
        rs, t = cells[wd], f"{s['title']}, ResNet at λ={wd:g}"
        lss, ots = _by_seed(rs, "lss"), _by_seed(rs, "ots")
        ots_u, ots_s = _by_seed(rs, "ots_untrained"), _by_seed(rs, "ots_shuffled")
        verdicts = (
            band(lss.values(), *CLAIM4_LSS),
            _saturated(band(ots.values(), *CLAIM4_OTS), ots, ots_u, "the untrained net"),
            direction(lss, _by_seed(rs, "lss_untrained")),
            _saturated(direction(ots_u, ots), ots, ots_u, "the untrained net"),
            _saturated(direction(ots_s, ots), ots, ots_s, "the shuffled-displacement null"),
            direction(_by_seed(rs, "lss_last"), _by_seed(rs, "lss_epoch1")),
        )
        out += [(lab, f"{t}: {text}", v) for (lab, text), v in zip(_CLAIM4_TEXTS, verdicts)]
    return out or [("4", "MNIST runs", not_measured("no MNIST ResNet runs"))]


_CLAIM5 = (  # label, value, statement, whether the ResNet's value is claimed the lower
    ("5a", "noise_drop", "ResNet accuracy drop under Gaussian noise < plain's", True),
    ("5b", "fgsm_drop", "ResNet accuracy drop under FGSM < plain's", True),
    ("5c", "noise_variation", "ResNet variation rate (noise, largest ε) < plain's", True),
    ("5d", "fgsm_variation", "ResNet variation rate (FGSM, largest ε) < plain's", True),
    ("5e", "train_loss", "(context) ResNet train loss > plain's, as in the paper", False),
)


def _claim5(settings) -> list:
    out = []
    for s in _main(settings):
        if not any(r["values"].get("noise_drop") is not None for r in s["runs"]):
            continue
        t = s["title"] + ("" if s["fields"]["dataset"] == "cifar100" else " (the paper's is CIFAR-100 K=1, λ=5e-2)")
        out += [
            (lab, f"{t}: {text}, every λ", _per_lambda(s, key, resnet_less=less)) for lab, key, text, less in _CLAIM5
        ]
    return out or [("5", "robustness data", not_measured("no residual/plain pair with robustness data"))]


def _claim6(settings) -> list:
    out = []
    for s in _main(settings):
        if not any(r["values"].get("ablation_drop_10_50") is not None for r in s["runs"]):
            continue
        t = s["title"]
        flat = combine(
            [
                (f"λ={wd:g}", band(_by_seed(rs, "ablation_drop_10_50").values(), -CLAIM6_FLAT, CLAIM6_FLAT))
                for wd, rs in sorted(_cells(s, "resnet").items())
            ]
        )
        out += [
            (
                "6a",
                f"{t}: ResNet accuracy about unchanged (drop within ±{CLAIM6_FLAT:g} points over 10-50 % "
                "of units replaced), every λ",
                flat,
            ),
            (
                "6b",
                f"{t}: plain accuracy falls more than ResNet's over 10-50 % of units replaced, every λ",
                _per_lambda(s, "ablation_drop_10_50", resnet_less=True),
            ),
        ]
    return out or [("6", "ablation data", not_measured("no residual/plain pair with ablation data"))]


def _claim7(settings) -> list:
    out = []
    for s in _main(settings):
        for arch, tag in (("resnet", "a"), ("plain", "b")):
            parts = [
                (f"λ={wd:g}", direction(_by_seed(rs, "lss_last"), _by_seed(rs, "lss_epoch1")))
                for wd, rs in sorted(_cells(s, arch).items())
            ]
            if parts:
                out.append(
                    (f"7{tag}", f"{s['title']}, {arch}: probe LSS at the last epoch < epoch 1, every λ", combine(parts))
                )
    out += _claim7_width(settings)
    return out


def _claim7_width(settings) -> list:
    """LSS lower at the larger width: same setting but width, same arch, λ and seed; one sub-claim per
    setting (profile, data set, …), so that early and converged runs are never pooled."""
    from image_experiments.models import TABLE1
    from image_experiments.report.collect import setting_title

    groups = defaultdict(lambda: defaultdict(list))
    titles = {}
    for s in settings.values():
        f = s["fields"]
        if f["head"] != "linear":
            continue
        family = "mnist" if f["dataset"] == "mnist" else "cifar"
        width = f.get("width") or TABLE1[(family, f["k"])]["dims"][0][0]  # None: Table 1's width
        rest = {k: v for k, v in f.items() if k != "width"}
        key = str(sorted(rest.items()))
        titles[key] = setting_title(rest)
        for (arch, wd), c in s["cells"].items():
            groups[(key, arch, wd)][width] += c["runs"]
    parts = defaultdict(list)
    for (key, arch, wd), by_w in sorted(groups.items(), key=lambda kv: (titles[kv[0][0]], *kv[0][1:])):
        ws = sorted(by_w)
        for w0, w1 in zip(ws, ws[1:]):
            parts[key].append(
                (f"{arch} λ={wd:g} width {w0}→{w1}", direction(_by_seed(by_w[w1], "lss"), _by_seed(by_w[w0], "lss")))
            )
    if not parts:
        return [("7c", "LSS falls as width grows (Fig. 5)", not_measured("no runs that differ only in width"))]
    return [
        ("7c", f"{titles[key]}: LSS lower at the larger width, every step (Fig. 5)", combine(ps, unit="steps"))
        for key, ps in sorted(parts.items(), key=lambda kv: titles[kv[0]])
    ]


def claims(settings: dict) -> list[tuple[int, list]]:
    """For each claim of SPEC §7, its sub-claims ``(label, statement, Verdict)``."""
    return [
        (1, _claim1(settings)),
        (2, _claim2(settings)),
        (3, _claim3(settings)),
        (4, _claim4(settings)),
        (5, _claim5(settings)),
        (6, _claim6(settings)),
        (7, _claim7(settings)),
    ]
