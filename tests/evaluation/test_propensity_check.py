import numpy as np
import pytest

from tfcvr.evaluation import propensity_check


def _selected(n=400_000, seed=0):
    """Clicks more likely where conversion is likely (MNAR through `u`)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n)
    true_cvr = 1 / (1 + np.exp(-(-2.5 + u)))
    true_ctr = 1 / (1 + np.exp(-(-2.0 + 1.5 * u)))
    click = (rng.random(n) < true_ctr).astype(float)
    conversion = click * (rng.random(n) < true_cvr)
    return click, conversion, true_cvr, true_ctr


def test_true_propensity_recovers_the_rate_and_a_constant_does_not():
    click, conversion, true_cvr, true_ctr = _selected()
    constant = np.full_like(true_ctr, click.mean())
    out = propensity_check(click, conversion, true_cvr,
                           {"true": true_ctr, "constant": constant})
    # Selection makes the click space convert far more than the population.
    assert out["click_space_rate"] > 1.5 * out["true_rate"]
    assert out["unclicked_rate"] < out["true_rate"]
    assert out["snips_true"] == pytest.approx(out["true_rate"], rel=0.05)
    assert out["ipw_true"] == pytest.approx(out["true_rate"], rel=0.05)
    assert out["recovered_true"] == pytest.approx(1.0, abs=0.08)
    assert out["snips_constant"] == pytest.approx(out["click_space_rate"])
    assert out["recovered_constant"] == pytest.approx(0.0, abs=1e-12)


def test_bad_input_is_a_clear_error():
    click, conversion, true_cvr, true_ctr = _selected(n=100)
    with pytest.raises(ValueError, match="one value per row"):
        propensity_check(click, conversion[:-1], true_cvr, {"p": true_ctr})
    with pytest.raises(ValueError, match="one value per row"):
        propensity_check(click, conversion, true_cvr, {"p": true_ctr[:5]})
    with pytest.raises(ValueError, match="clicked row"):
        propensity_check(np.zeros(3), np.zeros(3), np.ones(3) / 2, {})
    with pytest.raises(ValueError, match="floor"):
        propensity_check(click, conversion, true_cvr, {}, floor=0)
