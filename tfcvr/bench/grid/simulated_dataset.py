import dataclasses
import math

from tfcvr.bench.grid._canonical import short_hash

KIND = "simulated"


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class SimulatedDataset:
    """One simulated + preprocessed dataset of the grid.

    `tfcvr.simulation.simulate` writes `rows` impressions with selection bias of
    strength `selection_bias` (weight of the standardised conversion logit in
    the click logit; 0 is missing at random) from `seed`; the Beam job turns
    them into a dataset directory (last 10% by time = eval split). The
    ground truth (`true_cvr`, `conversion_if_clicked`) rides along, so the
    grid reports `cvr_auc_true`, `cvr_bias_unclicked` and `cvr_rmse_true`.

    Args:
        selection_bias: float >= 0.
        seed: int >= 0. Simulation seed.
        rows: int >= 100. Impressions.
        ctr: float in (0, 1). Target CTR. Defaults to 0.04.
        cvr: float in (0, 1). Target CVR among clicks. Defaults to 0.05.
        num_users: int or None. Simulated users (None: simulator default).
        num_items: int or None. Simulated items (None: simulator default).
        cvr_noise: float or None. Standard deviation of the unobserved
            per-impression shock of the conversion logit (None: simulator
            default 0.5). The selection term sees it, so > 0 makes selection
            non-ignorable given the features; 0 makes it ignorable, the
            assumption of the IPW/DR estimators.
    """

    selection_bias: float
    seed: int = 0
    rows: int = 30_000
    ctr: float = 0.04
    cvr: float = 0.05
    num_users: int | None = None
    num_items: int | None = None
    cvr_noise: float | None = None

    def __post_init__(self):
        bias = self.selection_bias
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not (
            math.isfinite(bias) and bias >= 0
        ):
            raise ValueError(
                f"selection_bias must be a finite number >= 0. Received: "
                f"selection_bias={bias!r}"
            )
        _check_int("seed", self.seed, 0)
        _check_int("rows", self.rows, 100)
        _check_rate("ctr", self.ctr)
        _check_rate("cvr", self.cvr)
        for name in ("num_users", "num_items"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        noise = self.cvr_noise
        if noise is not None and (
            isinstance(noise, bool) or not isinstance(noise, (int, float))
            or not (math.isfinite(noise) and noise >= 0)
        ):
            raise ValueError(
                f"cvr_noise must be None or a finite number >= 0. Received: "
                f"cvr_noise={noise!r}"
            )

    kind = KIND
    has_ground_truth = True
    aliccp = False

    @property
    def label(self):
        """Name shared by every data seed of this setting (a report row)."""
        noise = "" if self.cvr_noise is None else f"-cvrnoise{self.cvr_noise:g}"
        return f"sim-bias{self.selection_bias:g}{noise}"

    @property
    def key(self):
        return short_hash(self.to_dict(), 12)

    @property
    def dir_name(self):
        return f"{self.label}-seed{self.seed}-{self.key}"

    def to_dict(self):
        config = {"kind": KIND, **dataclasses.asdict(self)}
        if self.cvr_noise is None:
            # Datasets from before the option keep their keys.
            del config["cvr_noise"]
        return config

    @classmethod
    def from_dict(cls, config):
        config = dict(config)
        config.pop("kind", None)
        return cls(**config)
