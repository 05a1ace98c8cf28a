"""Does a propensity model carry the click selection? (simulated data)

IPW-family estimators (Multi-IPW/DR, ESCM², DR-JL, MRDR) are unbiased when
their propensity is the true click probability. On data with ground truth
this is checkable without training a CVR model: the IPW and SNIPS estimates
of the entire-space conversion rate,

    IPW   = (1/N) Σ o r / p,        SNIPS = Σ o r / p  /  Σ o / p,

land on the true rate `mean(true_cvr)` with the true propensity and on the
click-space rate `Σ o r / Σ o` (the naive model's target) with a constant
one. Where an estimated propensity (a model's pCTR) lands between the two
says how much of the selection bias an IPW-family estimator can remove with
it.
"""

import numpy as np


def _flat(name, values, n=None):
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if n is not None and len(array) != n:
        raise ValueError(
            f"{name} must have one value per row ({n}). Received: {len(array)} values"
        )
    return array


def propensity_check(click, conversion, true_cvr, propensities, floor=1e-6):
    """IPW/SNIPS estimates of the entire-space CVR under each propensity.

    Args:
        click: array of 0/1, shape `(N,)`.
        conversion: array of 0/1 (`click * conversion`), shape `(N,)`.
        true_cvr: array, shape `(N,)`. The simulator's true CVR of each row.
        propensities: dict name -> array `(N,)` of click propensities (e.g.
            `{"true_ctr": ..., "pctr": ...}`), clipped below at `floor`.
        floor: float > 0. Lower clip of every propensity.

    Returns:
        dict: `true_rate` (mean true CVR), `click_space_rate` (conversion
        rate among clicks), `unclicked_rate` (mean true CVR of unclicked
        rows), and per propensity `ipw_<name>`, `snips_<name>` and
        `recovered_<name>`: the share of the gap between the click-space
        rate and the true rate that SNIPS closes (1 = all of it, 0 = none).
    """
    if not floor > 0:
        raise ValueError(f"floor must be > 0. Received: floor={floor!r}")
    click = _flat("click", click)
    n = len(click)
    if n == 0:
        raise ValueError("propensity_check needs at least one row.")
    conversion = _flat("conversion", conversion, n)
    true_cvr = _flat("true_cvr", true_cvr, n)
    if click.sum() == 0:
        raise ValueError("propensity_check needs at least one clicked row.")
    result = {
        "true_rate": float(true_cvr.mean()),
        "click_space_rate": float(conversion[click == 1].mean()),
        "unclicked_rate": float(true_cvr[click == 0].mean()) if (click == 0).any()
        else float("nan"),
    }
    gap = result["click_space_rate"] - result["true_rate"]
    for name, values in propensities.items():
        p = np.maximum(_flat(name, values, n), floor)
        weighted = np.sum(click * conversion / p)
        snips = float(weighted / np.sum(click / p))
        result[f"ipw_{name}"] = float(weighted / n)
        result[f"snips_{name}"] = snips
        result[f"recovered_{name}"] = (
            float((result["click_space_rate"] - snips) / gap) if gap != 0 else float("nan")
        )
    return result
