"""Matplotlib figures of row-level predictions (see `collect_predictions`).

pyplot is imported when a figure is drawn, not with the package: the
evaluation code must not cost a command the matplotlib import, and the
figures use whatever backend is active (inline in a notebook).
"""

import numpy as np

from tfcvr.evaluation.calibration import reliability_curve
from tfcvr.features import keys

# (panel title, which rows: clicked or not).
_PANELS = (("clicked rows", 1.0), ("unclicked rows", 0.0))


def _required(label, run, names):
    missing = [n for n in names if n not in run]
    if missing:
        raise ValueError(
            f"Run {label!r} lacks {missing}; collect it with "
            f"`collect_predictions` on a dataset with ground truth "
            f"(`include_extra=True`). Received: {sorted(run)}"
        )


def plot_pcvr_against_true_cvr(runs, num_bins=10, title=None):
    """pCVR against the true CVR, on clicked and on unclicked rows.

    For each run, the rows of each panel are cut into `num_bins` equal-mass
    bins of pCVR; each point is (mean pCVR, mean true CVR) of one bin, so a
    calibrated model lies on the diagonal and a model that over-estimates
    lies below it. The legend gives each run's mean bias
    `mean(pCVR) - mean(true CVR)` on the panel's rows (what
    `cvr_bias_clicked` / `cvr_bias_unclicked` report).

    Args:
        runs: dict of label -> `collect_predictions` result with `cvr`,
            `click` and `true_cvr` (e.g. one naive model per selection-bias
            strength).
        num_bins: int. Equal-mass bins per curve. Defaults to 10.
        title: str or None. Figure title.

    Returns:
        `matplotlib.figure.Figure` with two axes (clicked, unclicked).
    """
    if not runs:
        raise ValueError("runs must name at least one run. Received: runs={}")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(_PANELS), figsize=(10, 4.2))
    top = 0.0
    for label, run in runs.items():
        _required(label, run, (keys.CVR, keys.CLICK, keys.TRUE_CVR))
        clicked = np.asarray(run[keys.CLICK]) > 0.5
        for ax, (panel, want) in zip(axes, _PANELS):
            rows = clicked if want else ~clicked
            if not rows.any():
                continue
            pcvr = np.asarray(run[keys.CVR])[rows]
            truth = np.asarray(run[keys.TRUE_CVR])[rows]
            curve = reliability_curve(truth, pcvr, num_bins)
            bias = float(pcvr.mean() - truth.mean())
            ax.plot(curve["mean_prediction"], curve["observed_rate"],
                    marker="o", markersize=3, label=f"{label} (bias {bias:+.3f})")
            top = max([top] + curve["mean_prediction"] + curve["observed_rate"])
    top = top * 1.05 or 1.0
    for ax, (panel, _) in zip(axes, _PANELS):
        ax.plot([0, top], [0, top], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("mean pCVR (equal-mass bin of pCVR)")
        ax.set_ylabel("mean true CVR (simulator)")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
