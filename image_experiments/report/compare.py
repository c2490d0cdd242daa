"""Each sub-claim's verdict at convergence beside the early-training one and the paper's.

The verdicts of :func:`.claims.claims` are made per setting; this module lines up the settings that
differ only in their training schedule (the ``profile``): early training (``cpu``, ``cpu-grid``), the
40-epoch CIFAR schedule (``converged``), the end of training (CIFAR ``converged-long``, MNIST
``converged``) and the paper's GPU schedules (``gpu``, ``full``), and puts beside them what the
paper reports for the same sub-claim (its own numbers where the statistic can be computed from its
tables, else its words).
"""

from __future__ import annotations

from collections import defaultdict

from image_experiments import paper_values as pv
from image_experiments.report.claims import CLAIM2_DROP, CLAIM2_JUMP

__all__ = ["STAGES", "stage_of", "convergence_rows", "convergence_table"]

# column id → header; a profile belongs to one column (stage_of)
STAGES = {
    "early": "early training (cpu, cpu-grid)",
    "mid": "CIFAR 40 epochs (converged)",
    "end": "at convergence (CIFAR converged-long, MNIST converged)",
    "gpu": "paper's schedule (gpu, full)",
}

# what the paper says for the sub-claims whose statistic its tables do not give
_PAPER_WORDS = {
    "1a": "holds: 1.18-1.87 vs 3.36-4.66 (Table 6)",
    "1b": "holds: 0.76-1 vs ≈0-0.22 (Table 6)",
    "1c": "holds: 94.1-95.5 vs 89.3-94.0 (Table 6)",
    "1d": "not reported (no untrained net)",
    "3a": "holds: 64-98 % (Table 2, CIFAR-100)",
    "3b": "holds: LSR 1.02-1.55 vs LSS 6-8 (Table 5, CIFAR-100)",
    "4a": "LSS ≈ 1.12 (MNIST, λ unknown)",
    "4b": "OTS ≈ 0.96 (MNIST, λ unknown)",
    "4c": "not reported (no untrained net)",
    "4d": "not reported (no untrained net)",
    "4e": "not reported (no null)",
    "4f": "holds (tracks straighten, figure)",
    "5a": "holds (figure, CIFAR-100 K=1, λ=5e-2)",
    "5b": "holds (figure, CIFAR-100 K=1, λ=5e-2)",
    "5c": "holds (figure, CIFAR-100 K=1, λ=5e-2)",
    "5d": "holds (figure, CIFAR-100 K=1, λ=5e-2)",
    "5e": "holds (ResNet train loss higher)",
    "6a": "holds (figure)",
    "6b": "holds (figure)",
    "7a": "holds (LSS falls during training, figure)",
    "7b": "holds (LSS falls during training, figure)",
    "7c": "holds (Fig. 5)",
}


def stage_of(fields: dict) -> str | None:
    """The column of a setting's profile; None for profiles no claim is read from (smoke)."""
    profile, dataset = fields.get("profile"), fields.get("dataset")
    if profile in ("cpu", "cpu-grid"):
        return "early"
    if profile == "converged":
        return "end" if dataset == "mnist" else "mid"
    if profile == "converged-long":
        return "end"
    if profile in ("gpu", "full"):
        return "gpu"
    return None


def _family(title: str, profile: str) -> str:
    """A setting's title without its profile: the row a setting's verdict goes to."""
    return title.replace(f", profile {profile}", "")


def _mean(dataset: str, arch: str, metric: str, lo: float, hi: float) -> float | None:
    name = pv.table_for(dataset, 1)
    if name is None:
        return None
    vals = [
        row[(metric, arch)].value
        for lam, row in pv.TABLES[name]["rows"].items()
        if lo <= lam <= hi and (metric, arch) in row and not row[(metric, arch)].lost
    ]
    return sum(vals) / len(vals) if vals else None


def paper_text(label: str, dataset: str) -> str:
    """What the paper reports for a sub-claim: claim 2's statistic from its K=1 table, else its words."""
    if label[:1] == "2" and len(label) == 3:
        arch = "plain" if label[1] == "a" else "resnet"
        if label[2] == "1":
            low, mid = _mean(dataset, arch, "lss", 0, 1e-3), _mean(dataset, arch, "lss", 5e-3, 1e-2)
            if low and mid:
                word = "holds" if mid <= CLAIM2_DROP * low else "does not hold"
                return f"{word}: LSS {low:.2f} → {mid:.2f} (× {mid / low:.2f})"
        else:
            a, b = ((0, 1e-3), (5e-3, 1e-2)) if label[2] == "2" else ((5e-3, 1e-2), (5e-2, float("inf")))
            x, y = _mean(dataset, arch, "train_acc", *a), _mean(dataset, arch, "train_acc", *b)
            if x is not None and y is not None:
                ok = y - x >= CLAIM2_JUMP if label[2] == "2" else y < x
                return f"{'holds' if ok else 'does not hold'}: train acc {x:.1f} → {y:.1f} %"
        return "no K=1 table for this data set"
    return _PAPER_WORDS.get(label, "–")


def convergence_rows(settings: dict, claim_list: list) -> tuple[list[list[str]], list[str]]:
    """One row per (sub-claim, setting without its profile): its verdict in each stage present, and the
    paper's; with the stages (columns) present."""
    by_title = {s["title"]: s for s in settings.values()}
    cells: dict = defaultdict(dict)
    order: list = []
    for _, subs in claim_list:
        for label, statement, v in subs:
            title = max((t for t in by_title if statement.startswith(t)), key=len, default=None)
            if title is None:
                continue
            f = by_title[title]["fields"]
            stage = stage_of(f)
            if stage is None:
                continue
            key = (label, _family(title, f["profile"]) + statement[len(title) :], f["dataset"])
            if key not in cells:
                order.append(key)
            cells[key][stage] = v.label
    stages = [s for s in STAGES if any(s in c for c in cells.values())]
    rows = []
    for key in order:
        label, text, dataset = key
        rows.append([label, text, *(cells[key].get(s, "–") for s in stages), paper_text(label, dataset)])
    return rows, stages


def convergence_table(settings: dict, claim_list: list) -> str:
    """The Markdown table of :func:`convergence_rows` with its caption."""
    from image_experiments.report.tables import md_table

    rows, stages = convergence_rows(settings, claim_list)
    if not rows:
        return "No sub-claim was judged on a setting with a known schedule."
    head = ["", "sub-claim (setting without its profile)", *(STAGES[s] for s in stages), "paper"]
    note = (
        "Each cell is the verdict of the same sub-claim and rule on the runs of one schedule (– : no such "
        "runs). The paper column gives the paper's own value of the statistic where its K=1 tables allow "
        "(claim 2: the means over λ ≤ 1e-3, 5e-3-1e-2 and ≥ 5e-2 of Table 4 for CIFAR-10), else what it "
        "reports; it never has seeds, nulls or an untrained net."
    )
    return md_table(head, rows) + "\n\n" + note
