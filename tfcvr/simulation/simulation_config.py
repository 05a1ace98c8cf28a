import dataclasses
import math


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Every knob of the impression-log simulator (`tfcvr.simulation.Simulator`).

    The simulated world: users and items with latent factors and observable
    categorical features at Ali-CCP-like cardinalities, Zipf popularity on
    both sides, sessions of impressions, a click and a counterfactual
    conversion outcome for every impression:

        click logit       = a_ctr + s_ctr(x) + e_ctr + selection_bias * z
        conversion logit  = a_cvr + s_cvr(x) + e_cvr,   z = standardised
                            conversion logit (without its intercept)

    `s_ctr` and `s_cvr` read the same item factor vector through independent
    user factors, so with `selection_bias=0` click is independent of the
    conversion outcome (missing at random); `selection_bias > 0` makes users
    click more where they would convert. The intercepts `a_ctr`, `a_cvr`
    are calibrated by bisection so that the realised CTR and the CVR among
    clicks match `ctr` and `cvr` for any `selection_bias`.

    Args:
        num_users: int. Users (Ali-CCP: ~4e5). Defaults to 100_000.
        num_items: int. Items (Ali-CCP: ~4.7e5). Defaults to 150_000.
        num_categories: int or None. Item categories; None means
            `max(2, num_items // 150)`.
        num_brands: int or None. Brands; None means `max(2, num_items // 25)`.
        num_shops: int or None. Shops; None means `max(2, num_items // 10)`.
        intentions_per_category: int. Intention nodes (Ali-CCP field 210)
            under each category. Defaults to 4.
        num_cities: int. Values of the city profile field. Defaults to 300.
        num_scenarios: int. Values of the scenario/position field (Ali-CCP
            field 301); earlier scenarios get more clicks. Defaults to 3.
        user_zipf: float. Zipf exponent of user activity (sessions per
            user). Defaults to 0.8.
        item_zipf: float. Zipf exponent of item exposure. Defaults to 0.9.
        ctr: float in (0, 1). Target click-through rate. Defaults to 0.04
            (Ali-CCP: 3.9%).
        cvr: float in (0, 1). Target conversion rate among clicks.
            Defaults to 0.01 (Ali-CCP: 0.5-1%).
        selection_bias: float. Weight of the standardised conversion logit
            in the click logit; 0 is missing at random. Defaults to 1.0.
        latent_dim: int. Dimension of the user and item factors.
            Defaults to 8.
        ctr_noise: float. Standard deviation of an unobserved per-impression
            shock of the click logit. Defaults to 0.5.
        cvr_noise: float. Standard deviation of an unobserved per-impression
            shock of the conversion logit; the selection-bias term sees it,
            so with both > 0 selection is not ignorable given the features.
            Defaults to 0.5.
        relevant_exposure: float in [0, 1]. Share of impressions whose item
            the (simulated) recommender picks from the user's interest
            categories instead of global popularity. Defaults to 0.3.
        interest_categories: int. Interest categories per user (the source
            of relevant exposure and of the behaviour history).
            Defaults to 5.
        mean_session_length: float >= 1. Mean impressions per session (one
            Ali-CCP common-feature row). Defaults to 8.0.
        mean_history_length: float >= 0. Mean past clicks per user behind
            the behaviour fields. Defaults to 10.0.
        max_history_length: int. Cap on past clicks per user.
            Defaults to 30.
        calibration_rows: int. Impressions simulated to calibrate the
            intercepts. Defaults to 200_000.
        seed: int. Seed of everything. Defaults to 0.
    """

    num_users: int = 100_000
    num_items: int = 150_000
    num_categories: int | None = None
    num_brands: int | None = None
    num_shops: int | None = None
    intentions_per_category: int = 4
    num_cities: int = 300
    num_scenarios: int = 3
    user_zipf: float = 0.8
    item_zipf: float = 0.9
    ctr: float = 0.04
    cvr: float = 0.01
    selection_bias: float = 1.0
    latent_dim: int = 8
    ctr_noise: float = 0.5
    cvr_noise: float = 0.5
    relevant_exposure: float = 0.3
    interest_categories: int = 5
    mean_session_length: float = 8.0
    mean_history_length: float = 10.0
    max_history_length: int = 30
    calibration_rows: int = 200_000
    seed: int = 0

    def __post_init__(self):
        positive_ints = {
            "num_users": 1,
            "num_items": 1,
            "intentions_per_category": 1,
            "num_cities": 1,
            "num_scenarios": 1,
            "latent_dim": 1,
            "interest_categories": 1,
            "max_history_length": 1,
            "calibration_rows": 1000,
        }
        for name, low in positive_ints.items():
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ValueError(
                    f"SimulationConfig: {name} must be an integer >= {low}. "
                    f"Received: {name}={value!r}"
                )
        for name in ("num_categories", "num_brands", "num_shops"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(
                    f"SimulationConfig: {name} must be None or an integer "
                    f">= 1. Received: {name}={value!r}"
                )
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(
                f"SimulationConfig: seed must be a non-negative integer. "
                f"Received: seed={self.seed!r}"
            )
        for name in ("ctr", "cvr"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < value < 1.0:
                raise ValueError(
                    f"SimulationConfig: {name} must be a rate strictly "
                    f"between 0 and 1. Received: {name}={value!r}"
                )
        if not _is_real(self.selection_bias):
            raise ValueError(
                f"SimulationConfig: selection_bias must be a finite number. "
                f"Received: selection_bias={self.selection_bias!r}"
            )
        non_negative = (
            "user_zipf",
            "item_zipf",
            "ctr_noise",
            "cvr_noise",
            "mean_history_length",
        )
        for name in non_negative:
            value = getattr(self, name)
            if not _is_real(value) or value < 0:
                raise ValueError(
                    f"SimulationConfig: {name} must be a finite number >= 0. "
                    f"Received: {name}={value!r}"
                )
        if not _is_real(self.relevant_exposure) or not (
            0.0 <= self.relevant_exposure <= 1.0
        ):
            raise ValueError(
                f"SimulationConfig: relevant_exposure must be in [0, 1]. "
                f"Received: relevant_exposure={self.relevant_exposure!r}"
            )
        if not _is_real(self.mean_session_length) or (
            self.mean_session_length < 1.0
        ):
            raise ValueError(
                f"SimulationConfig: mean_session_length must be >= 1. "
                f"Received: mean_session_length={self.mean_session_length!r}"
            )

    # === Resolved cardinalities ===

    @property
    def category_count(self):
        if self.num_categories is not None:
            return self.num_categories
        return max(2, self.num_items // 150)

    @property
    def brand_count(self):
        if self.num_brands is not None:
            return self.num_brands
        return max(2, self.num_items // 25)

    @property
    def shop_count(self):
        if self.num_shops is not None:
            return self.num_shops
        return max(2, self.num_items // 10)

    @property
    def intention_count(self):
        return self.category_count * self.intentions_per_category

    # === Serialization ===

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"SimulationConfig has unknown keys {unknown}. Known keys: "
                f"{sorted(known)}"
            )
        return cls(**config)


def _is_real(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
