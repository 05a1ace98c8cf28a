"""The claim the causal estimators exist for, checked on the shipped losses.

Simulated impressions with known click propensities p_i and a CVR error e_i
on every row (the counterfactual conversion is drawn for unclicked rows
too); clicks o_i ~ Bernoulli(p_i). A latent z drives the propensity, the
conversion and the prediction, so the clicked rows are a biased sample of
the errors. Over many simulated batches the IPW and DR estimates of the
ideal loss (1/|D|) sum_D e_i must be unbiased with the true propensity, DR
also with a wrong propensity or a wrong imputation (not both), while the
naive click-space mean is many standard errors off.
"""

import numpy as np
from keras import ops

from tfcvr.losses import DoublyRobustLoss
from tfcvr.losses import IPWLoss
from tfcvr.losses import functional as F
from tfcvr.testing import TestCase

NUM_BATCHES = 8000
BATCH = 64
UNBIASED_SE = 4.0
BIASED_SE = 20.0


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_bce(y, p):
    return -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def simulate(seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(NUM_BATCHES, BATCH))
    propensity = np.clip(sigmoid(-1.0 + 1.5 * z), 0.05, 0.95)
    conversion_rate = sigmoid(-1.0 + 2.0 * z)
    prediction = sigmoid(-1.5 + 0.5 * z)
    conversion = rng.random(z.shape) < conversion_rate
    click = rng.random(z.shape) < propensity
    error = np_bce(conversion, prediction)
    return {
        "click": click.astype("float32"),
        # Logged labels: a conversion is only seen after a click.
        "observed_conversion": (click & conversion).astype("float32"),
        "prediction": prediction.astype("float32"),
        "propensity": propensity.astype("float32"),
        "wrong_propensity": np.clip(sigmoid(-0.5 - 0.5 * z), 0.1, 0.9)
        .astype("float32"),
        # E[e | z]: the right imputation, since o and e are independent
        # given z.
        "imputation": (
            conversion_rate * np_bce(1.0, prediction)
            + (1.0 - conversion_rate) * np_bce(0.0, prediction)
        ).astype("float32"),
        "wrong_imputation": np.full(z.shape, 0.2, "float32"),
        "error": error.astype("float32"),
        "ideal": error.mean(axis=1),
    }


def per_batch(loss, data, propensity, imputation=None):
    """The loss on each simulated batch, vectorised over batches."""
    rows = dict(observed=data["click"], target=data["observed_conversion"],
                prediction=data["prediction"], propensity=data[propensity])
    if imputation is not None:
        rows["imputation"] = data[imputation]
    values = ops.vectorized_map(lambda batch: loss(**batch), rows)
    return ops.convert_to_numpy(values).astype("float64")


def bias_in_standard_errors(estimates, ideal):
    diff = estimates - ideal
    standard_error = diff.std(ddof=1) / np.sqrt(len(diff))
    return diff.mean(), diff.mean() / standard_error


class UnbiasednessTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = simulate()

    def check(self, name, estimates, unbiased):
        bias, z = bias_in_standard_errors(estimates, self.data["ideal"])
        message = f"{name}: bias {bias:+.4f} = {z:+.1f} standard errors"
        if unbiased:
            self.assertLess(abs(z), UNBIASED_SE, message)
        else:
            self.assertGreater(abs(z), BIASED_SE, message)
        return bias, z

    def test_selection_makes_clicks_a_biased_sample(self):
        # The premise: clicked rows have larger errors than the average row.
        d = self.data
        clicked = (d["click"] * d["error"]).sum() / d["click"].sum()
        self.assertGreater(clicked, d["error"].mean() + 0.1)

    def test_naive_click_space_estimate_is_biased(self):
        d = self.data
        naive = ops.convert_to_numpy(
            ops.vectorized_map(
                lambda b: F.masked_mean(b[0], b[1]), (d["error"], d["click"])
            )
        ).astype("float64")
        self.check("naive", naive, unbiased=False)

    def test_ipw_is_unbiased_with_the_true_propensity(self):
        loss = IPWLoss(normalization="exposure")
        self.check("ipw", per_batch(loss, self.data, "propensity"),
                   unbiased=True)
        self.check("ipw, wrong propensity",
                   per_batch(loss, self.data, "wrong_propensity"),
                   unbiased=False)

    def test_doubly_robust_needs_one_of_two_right(self):
        loss = DoublyRobustLoss(normalization="exposure")
        cases = (
            ("propensity", "imputation", True),
            ("propensity", "wrong_imputation", True),
            ("wrong_propensity", "imputation", True),
            ("wrong_propensity", "wrong_imputation", False),
        )
        for propensity, imputation, unbiased in cases:
            with self.subTest(propensity=propensity, imputation=imputation):
                self.check(
                    f"dr({propensity}, {imputation})",
                    per_batch(loss, self.data, propensity, imputation),
                    unbiased=unbiased,
                )
