import abc

import keras
from keras import ops

from tfcvr.features import keys
from tfcvr.losses import functional as F



class CounterfactualLoss(keras.losses.Loss, abc.ABC):
    """Base of the propensity-weighted CVR losses (IPW, DR, imputation).

    Each estimates an entire-space risk `(1/|D|) sum_D v_i` whose per-row
    value `v_i` is only observed on clicked rows (`o_i = 1`):

        L = (1/B) sum_i d_i + (1/N) sum_i o_i * w(p_i) * v_i

    `d_i` is a direct (imputed) term known on every row (absent for IPW),
    `w(p) = 1/p` the propensity weight (overridable), `p_i` the click
    propensity `pCTR` (through `stop_gradient` and clipped to
    `[propensity_floor, 1]`), and `N` the normaliser: the batch size B
    (`"exposure"`, the unbiased form), the clicks in the batch
    (`"click"`), or `sum_i o_i * w(p_i)` (`"snips"`, self-normalised).
    A subclass implements `row_terms(y_true, y_pred) -> (d, v)`.

    Inputs: `y_true` a dict with `click` and `conversion`; `y_pred` a dict
    with `ctr` (the propensity), `cvr` and whatever the subclass reads; each
    `(batch,)` or `(batch, 1)`. `call` returns the per-row contributions
    `(batch,)`; calling the loss returns their sum, a scalar.

    Args:
        normalization: str. `"exposure"`, `"click"` or `"snips"` (a subclass
            may allow fewer). Defaults to `"exposure"`.
        propensity_floor: float in (0, 1). Lower clip of the propensity.
            Defaults to 1e-6.
        weight_cap: float or None. Upper clip of each normalised weight
            `o_i * w(p_i) / N` (ESCM2's official code caps it at 15).
            Defaults to None (no cap).
        stop_gradient_propensity: bool. Propensities enter through
            `stop_gradient`, so the CTR tower gets no gradient from this
            loss. Defaults to True.
        epsilon: float. Probability clip inside logs. Defaults to 1e-7.
        name: str or None.
        dtype: dtype or None.
    """

    normalizations = F.NORMALIZATIONS
    required_outputs = (keys.CTR, keys.CVR)

    def __init__(
        self,
        normalization="exposure",
        propensity_floor=1e-6,
        weight_cap=None,
        stop_gradient_propensity=True,
        epsilon=F.EPSILON,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, reduction="sum", dtype=dtype)
        if normalization not in self.normalizations:
            raise ValueError(
                f"{type(self).__name__} normalization must be one of "
                f"{self.normalizations}. Received: "
                f"normalization={normalization!r}"
            )
        if not isinstance(propensity_floor, (int, float)) or not (
            0.0 < propensity_floor < 1.0
        ):
            raise ValueError(
                "propensity_floor must be in (0, 1). Received: "
                f"propensity_floor={propensity_floor!r}"
            )
        if weight_cap is not None and (
            not isinstance(weight_cap, (int, float)) or weight_cap <= 0
        ):
            raise ValueError(
                "weight_cap must be None or a number > 0. Received: "
                f"weight_cap={weight_cap!r}"
            )
        if not 0.0 < epsilon < 0.5:
            raise ValueError(
                f"epsilon must be in (0, 0.5). Received: epsilon={epsilon!r}"
            )
        self.normalization = normalization
        self.propensity_floor = propensity_floor
        self.weight_cap = weight_cap
        self.stop_gradient_propensity = bool(stop_gradient_propensity)
        self.epsilon = epsilon

    @abc.abstractmethod
    def row_terms(self, y_true, y_pred):
        """`(d, v)`: the direct term `(batch,)` or None, and the value
        `(batch,)` that counts on clicked rows."""

    def propensity_weight(self, propensity):
        return 1.0 / propensity

    def bce(self, y_true, y_prob):
        return F.binary_crossentropy(
            F.flat(y_true), F.flat(y_prob), self.epsilon
        )

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} weights rows by inverse propensity "
                "itself and takes no sample_weight. Received: a sample_weight"
            )
        self._check_inputs(y_true, y_pred)
        return super().__call__(y_true, y_pred)

    def _check_inputs(self, y_true, y_pred):
        for role, value, needed in (
            ("y_true", y_true, keys.LABEL_KEYS),
            ("y_pred", y_pred, self.required_outputs),
        ):
            if isinstance(value, dict) and all(k in value for k in needed):
                continue
            got = (
                sorted(value) if isinstance(value, dict)
                else type(value).__name__
            )
            raise ValueError(
                f"{type(self).__name__} needs {role} as a dict with keys "
                f"{list(needed)}. Received: {got}"
            )

    def call(self, y_true, y_pred):
        click = F.flat(y_true[keys.CLICK])
        weight = F.propensity_weights(
            click,
            y_pred[keys.CTR],
            normalization=self.normalization,
            floor=self.propensity_floor,
            cap=self.weight_cap,
            stop_gradient=self.stop_gradient_propensity,
            weight_fn=self.propensity_weight,
        )
        direct, value = self.row_terms(y_true, y_pred)
        rows = weight * value
        if direct is not None:
            rows = rows + direct / ops.cast(ops.shape(click)[0], "float32")
        return rows

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "normalization": self.normalization,
            "propensity_floor": self.propensity_floor,
            "weight_cap": self.weight_cap,
            "stop_gradient_propensity": self.stop_gradient_propensity,
            "epsilon": self.epsilon,
        }
