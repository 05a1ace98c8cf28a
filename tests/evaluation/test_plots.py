import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfcvr.evaluation import plot_pcvr_against_true_cvr  # noqa: E402
from tfcvr.features import keys  # noqa: E402


def _run(shift, rows=400, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.01, 0.2, rows)
    click = (rng.random(rows) < 0.5).astype(float)
    # Over-estimates the unclicked rows by `shift`, exact on the clicked ones.
    return {keys.CVR: truth + shift * (1 - click), keys.CLICK: click, keys.TRUE_CVR: truth}


def test_two_panels_with_each_runs_bias_in_the_legend():
    fig = plot_pcvr_against_true_cvr({"bias 0": _run(0.0), "bias 2": _run(0.05)},
                                     num_bins=5, title="t")
    try:
        clicked, unclicked = fig.axes
        assert [t.get_text() for t in clicked.get_legend().get_texts()] == [
            "bias 0 (bias +0.000)", "bias 2 (bias +0.000)"]
        assert [t.get_text() for t in unclicked.get_legend().get_texts()] == [
            "bias 0 (bias +0.000)", "bias 2 (bias +0.050)"]
        # Each curve: (mean pCVR, mean true CVR) per bin, so the shifted run
        # lies 0.05 below the diagonal on the unclicked rows.
        x, y = unclicked.get_lines()[1].get_data()
        np.testing.assert_allclose(np.asarray(x) - np.asarray(y), 0.05, atol=1e-9)
        assert len(x) == 5
    finally:
        plt.close(fig)


def test_a_run_without_ground_truth_is_named():
    run = _run(0.0)
    del run[keys.TRUE_CVR]
    with pytest.raises(ValueError, match="Run 'real' lacks \\['true_cvr'\\]"):
        plot_pcvr_against_true_cvr({"real": run})
    with pytest.raises(ValueError, match="at least one run"):
        plot_pcvr_against_true_cvr({})
