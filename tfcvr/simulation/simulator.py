import numpy as np

from tfcvr.simulation.simulation_config import SimulationConfig
from tfcvr.features import keys

# === Column names of the simulated logs (labels and ground truth: keys) ===
USER_ID = "user_id"
USER_PROFILE = "user_profile"
USER_GROUP = "user_group"
GENDER = "gender"
AGE = "age"
CONSUMPTION_LEVEL = "consumption_level"
CONSUMPTION_LEVEL_2 = "consumption_level_2"
OCCUPATION = "occupation"
CITY = "city"
HIST_CATEGORIES = "hist_categories"
HIST_BRANDS = "hist_brands"
ITEM_ID = "item_id"
CATEGORY = "category"
SHOP = "shop"
INTENTION = "intention"
BRAND = "brand"
SCENARIO = "scenario"
PRICE = "price"
CATEGORY_AFFINITY = "category_affinity"

MULTI_VALUE_SEPARATOR = "|"
HISTORY_MAX_LEN = 20

# Fixed user-profile cardinalities, those of Ali-CCP fields 121-128.
PROFILE_CARDINALITIES = {
    USER_PROFILE: 97,
    USER_GROUP: 13,
    GENDER: 2,
    AGE: 7,
    CONSUMPTION_LEVEL: 3,
    CONSUMPTION_LEVEL_2: 3,
    OCCUPATION: 2,
}

# Input-spec entries of the feature columns, in log order.
FEATURE_COLUMNS = {
    USER_ID: {"kind": keys.CATEGORICAL_INT},
    USER_PROFILE: {"kind": keys.CATEGORICAL_INT},
    USER_GROUP: {"kind": keys.CATEGORICAL_INT},
    GENDER: {"kind": keys.CATEGORICAL_INT},
    AGE: {"kind": keys.CATEGORICAL_INT},
    CONSUMPTION_LEVEL: {"kind": keys.CATEGORICAL_INT},
    CONSUMPTION_LEVEL_2: {"kind": keys.CATEGORICAL_INT},
    OCCUPATION: {"kind": keys.CATEGORICAL_INT},
    CITY: {"kind": keys.CATEGORICAL_STRING},
    HIST_CATEGORIES: {
        "kind": keys.MULTI_CATEGORICAL,
        "value_dtype": "int64",
        "separator": MULTI_VALUE_SEPARATOR,
        "max_len": HISTORY_MAX_LEN,
        "embedding_group": CATEGORY,
    },
    HIST_BRANDS: {
        "kind": keys.MULTI_CATEGORICAL,
        "value_dtype": "int64",
        "separator": MULTI_VALUE_SEPARATOR,
        "max_len": HISTORY_MAX_LEN,
        "embedding_group": BRAND,
    },
    ITEM_ID: {"kind": keys.CATEGORICAL_INT},
    CATEGORY: {"kind": keys.CATEGORICAL_INT, "embedding_group": CATEGORY},
    SHOP: {"kind": keys.CATEGORICAL_INT},
    INTENTION: {"kind": keys.CATEGORICAL_INT},
    BRAND: {"kind": keys.CATEGORICAL_INT, "embedding_group": BRAND},
    SCENARIO: {"kind": keys.CATEGORICAL_INT},
    PRICE: {"kind": keys.NUMERIC, "log": True},
    CATEGORY_AFFINITY: {"kind": keys.NUMERIC, "log": True},
}

GROUND_TRUTH_COLUMNS = (
    keys.TRUE_CTR,
    keys.TRUE_CVR,
    keys.CONVERSION_IF_CLICKED,
)
LOG_COLUMNS = (
    (keys.ROW_ID, keys.TIMESTAMP)
    + tuple(FEATURE_COLUMNS)
    + (keys.CLICK, keys.CONVERSION)
    + GROUND_TRUTH_COLUMNS
)
STRING_COLUMNS = (CITY, HIST_CATEGORIES, HIST_BRANDS)
FLOAT_COLUMNS = (PRICE, keys.TRUE_CTR, keys.TRUE_CVR)

# Extra per-row arrays of `iter_chunks(..., context=True)`; not log columns.
SESSION = "session"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
CONTEXT_COLUMNS = (SESSION, USER_INDEX, ITEM_INDEX)

# Item-side fields whose per-user past-click counts the simulator keeps.
BEHAVIOUR_FIELDS = (CATEGORY, SHOP, BRAND, INTENTION)

# Rows per generated block; fixed so that output bytes depend only on the
# config and the row count, never on how a caller batches the writing.
BLOCK_ROWS = 1 << 16
START_TIMESTAMP = 1_500_000_000

# Standard deviations of the logit components (the structure of the truth).
_INTERACTION_STD = 0.8
_USER_BIAS_STD = 0.3
_ITEM_BIAS_STD = 0.3
_FIELD_EFFECT_STD = 0.2
_PRICE_SENSITIVITY = 0.5
_AFFINITY_WEIGHT = 0.3
_SCENARIO_EFFECTS = (0.3, -0.4)
_INTEREST_CANDIDATES = 24

_WORLD_STREAM = 0
_DATA_STREAM = 1
_CALIBRATION_STREAM = 2


def _sigmoid(x):
    # tanh form: no overflow warnings for large |x|.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _zipf_cdf(n, exponent):
    weights = np.arange(1, n + 1, dtype=np.float64) ** (-float(exponent))
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _draw(rng, cdf, size):
    return np.minimum(
        np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1
    )


def _zipf_values(rng, n, exponent, size):
    """Zipf-distributed indices in [0, n) whose popularity ranks are shuffled."""
    ranks = _draw(rng, _zipf_cdf(n, exponent), size)
    return rng.permutation(n)[ranks]


def _bisect(fn, target, low=-40.0, high=40.0, steps=60):
    """Root of the increasing function `fn(a) = target` on [low, high]."""
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if fn(mid) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


class Simulator:
    """Entire-space impression logs with ground truth, at Ali-CCP scale.

    Users (Zipf activity) start sessions; every impression shows an item
    (Zipf popularity, or from the user's interest categories) in a
    scenario. With `u`/`i` the user/item, `p_u`, `r_u` independent user
    factors, `q_i` a unit-norm item factor built from its category, brand
    and intention node:

        s_ctr = <p_u, q_i> + b_u + b_i + scenario + 0.3 log1p(affinity)
        s_cvr = <r_u, q_i> + c_u + c_i - beta_u * standardised log price
        true_cvr = sigmoid(a_cvr + s_cvr + e_cvr)
        true_ctr = sigmoid(a_ctr + s_ctr + e_ctr
                           + selection_bias * standardise(s_cvr + e_cvr))

    `b_u`, `c_u` are user biases (profile fields plus a user term), `b_i`,
    `c_i` item biases (category; brand and shop), `beta_u` a price
    sensitivity by consumption level, `affinity` the user's past clicks on
    the item's category, and `e_ctr ~ N(0, ctr_noise^2)`, `e_cvr ~ N(0,
    cvr_noise^2)` unobserved per-impression shocks. Factors and biases
    derive from the logged columns, so the truth is learnable from them.
    CTR and CVR share the item factors (what ESMM's shared embeddings
    exploit) but not their user side, so that `selection_bias=0` is
    missing at random. `click ~ Bernoulli(true_ctr)`
    and the counterfactual `conversion_if_clicked ~ Bernoulli(true_cvr)`
    are drawn for every impression; `conversion = click *
    conversion_if_clicked`. Intercepts are calibrated by bisection on a
    separate sample so that realised CTR and CVR among clicks match the
    config's targets. (Ma et al., "Entire Space Multi-Task Model", SIGIR
    2018, for the entire-space setting and the Ali-CCP data it imitates.)

    Args:
        config: `SimulationConfig` or None (the defaults).

    Output: `iter_chunks(rows)` yields dicts of 1-D numpy arrays of equal
    length, keyed by `LOG_COLUMNS`; multi-valued columns are strings
    joined by `MULTI_VALUE_SEPARATOR`, most frequent value first.
    """

    def __init__(self, config=None):
        if config is None:
            config = SimulationConfig()
        if not isinstance(config, SimulationConfig):
            raise ValueError(
                f"Simulator expects a SimulationConfig. Received: "
                f"config={type(config).__name__}"
            )
        self.config = config
        self._history_strings = {}
        self._behaviour_sorted = {}
        self._build_world()
        self._calibrate()

    # === Public API ===

    @property
    def intercepts(self):
        """Calibrated logit intercepts and the standardisation of s_cvr."""
        return {
            "ctr_intercept": self._a_ctr,
            "cvr_intercept": self._a_cvr,
            "cvr_logit_mean": self._z_mean,
            "cvr_logit_std": self._z_std,
        }

    @property
    def users(self):
        """Per-user arrays by user index: profile fields (1-based ids)."""
        return dict(self._users)

    @property
    def items(self):
        """Per-item arrays by item index: attributes (1-based ids), price."""
        return dict(self._items)

    def input_spec(self):
        """The `spec.json` dict describing the csv/parquet log columns."""
        return {
            "columns": {name: dict(c) for name, c in FEATURE_COLUMNS.items()},
            "labels": {keys.CLICK: keys.CLICK, keys.CONVERSION: keys.CONVERSION},
            "user_id": USER_ID,
            "item_id": ITEM_ID,
            "extra_columns": [keys.ROW_ID, *GROUND_TRUTH_COLUMNS],
            "timestamp": keys.TIMESTAMP,
            "row_key": keys.ROW_ID,
            "vocab": {"min_count": 1, "top_k": None, "num_oov": 1},
        }

    def iter_chunks(self, rows, context=False):
        """Yields the log of `rows` impressions in time order, in chunks.

        Args:
            rows: int >= 1. Impressions in total.
            context: bool. Also return `CONTEXT_COLUMNS`: the global
                session number, the user index and the item index of
                every row (what the Ali-CCP writer needs).
        """
        if not isinstance(rows, (int, np.integer)) or isinstance(rows, bool):
            raise ValueError(f"rows must be an integer. Received: rows={rows!r}")
        if rows < 1:
            raise ValueError(f"rows must be >= 1. Received: rows={rows}")
        rows = int(rows)
        timestamp = START_TIMESTAMP
        session = 0
        for block, start in enumerate(range(0, rows, BLOCK_ROWS)):
            rng = np.random.default_rng(
                [self.config.seed, _DATA_STREAM, block]
            )
            size = min(BLOCK_ROWS, rows - start)
            chunk = self._simulate_block(rng, size, start, timestamp, session)
            timestamp = int(chunk[keys.TIMESTAMP][-1])
            session = int(chunk[SESSION][-1]) + 1
            if not context:
                for name in CONTEXT_COLUMNS:
                    del chunk[name]
            yield chunk

    def sample(self, rows):
        """All `rows` impressions as one pandas DataFrame (small rows only)."""
        import pandas as pd

        chunks = list(self.iter_chunks(rows))
        return pd.DataFrame(
            {c: np.concatenate([ch[c] for ch in chunks]) for c in LOG_COLUMNS}
        )

    def behaviour(self, field):
        """Per-user past clicks on `field` values, most frequent first.

        Returns:
            (user_index, value_id, count): read-only 1-D int arrays sorted
            by user index, then by count descending, then by value id.
        """
        if field not in BEHAVIOUR_FIELDS:
            raise ValueError(
                f"No behaviour field {field!r}. Expected one of "
                f"{list(BEHAVIOUR_FIELDS)}."
            )
        if field not in self._behaviour_sorted:
            users, values, counts = self._behaviour[field]
            order = np.lexsort((values, -counts, users))
            arrays = (users[order], values[order] + 1, counts[order])
            for array in arrays:
                array.flags.writeable = False
            self._behaviour_sorted[field] = arrays
        return self._behaviour_sorted[field]

    def behaviour_count(self, field, user_index, value_id):
        """Past clicks of each user on each `field` value id (0 if none)."""
        return self._lookup(field, np.asarray(user_index), np.asarray(value_id) - 1)

    # === World ===

    def _build_world(self):
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, _WORLD_STREAM])
        d = cfg.latent_dim
        n_users, n_items = cfg.num_users, cfg.num_items
        n_cat, n_brand, n_shop = (
            cfg.category_count,
            cfg.brand_count,
            cfg.shop_count,
        )

        # --- Users: profile fields, factors, biases ---
        card = PROFILE_CARDINALITIES
        profile = _zipf_values(rng, card[USER_PROFILE], 1.0, n_users)
        group_of_profile = rng.integers(card[USER_GROUP], size=card[USER_PROFILE])
        gender = rng.choice(2, size=n_users, p=[0.45, 0.55])
        age = rng.choice(
            card[AGE], size=n_users, p=[0.05, 0.2, 0.3, 0.2, 0.13, 0.08, 0.04]
        )
        consumption = rng.choice(3, size=n_users, p=[0.3, 0.5, 0.2])
        consumption_2 = np.where(
            rng.random(n_users) < 0.7, consumption, rng.integers(3, size=n_users)
        )
        occupation = rng.choice(2, size=n_users, p=[0.35, 0.65])
        city = _zipf_values(rng, cfg.num_cities, 1.0, n_users)
        fields = {
            USER_PROFILE: profile,
            USER_GROUP: group_of_profile[profile],
            GENDER: gender,
            AGE: age,
            CONSUMPTION_LEVEL: consumption,
            CONSUMPTION_LEVEL_2: consumption_2,
            OCCUPATION: occupation,
        }

        def user_factor(field_names, cities):
            # Half the variance from profile fields (so cold users are
            # predictable), half user-specific.
            parts = list(field_names) + ([CITY] if cities else [])
            std = _INTERACTION_STD * np.sqrt(0.5 / len(parts))
            total = rng.normal(0.0, _INTERACTION_STD * np.sqrt(0.5), (n_users, d))
            for name in parts:
                size = cfg.num_cities if name == CITY else card[name]
                values = city if name == CITY else fields[name]
                total += rng.normal(0.0, std, (size, d))[values]
            return total

        p_user = user_factor([GENDER, AGE, USER_PROFILE, USER_GROUP, OCCUPATION], True)
        r_user = user_factor(
            [AGE, CONSUMPTION_LEVEL, CONSUMPTION_LEVEL_2, OCCUPATION, USER_PROFILE],
            False,
        )
        ctr_user_bias = (
            rng.normal(0.0, _FIELD_EFFECT_STD, card[AGE])[age]
            + rng.normal(0.0, _FIELD_EFFECT_STD, 2)[gender]
            + rng.normal(0.0, _USER_BIAS_STD, n_users)
        )
        cvr_user_bias = (
            rng.normal(0.0, _FIELD_EFFECT_STD, 3)[consumption]
            + rng.normal(0.0, _FIELD_EFFECT_STD, 2)[occupation]
            + rng.normal(0.0, _USER_BIAS_STD, n_users)
        )
        # Low consumption levels are the most price sensitive.
        price_sensitivity = _PRICE_SENSITIVITY * np.array([1.5, 1.0, 0.5])[consumption]

        # --- Items: attributes, factors, biases, price ---
        category = _zipf_values(rng, n_cat, 1.0, n_items)
        brand = _zipf_values(rng, n_brand, 1.0, n_items)
        shop = _zipf_values(rng, n_shop, 0.8, n_items)
        intention = category * cfg.intentions_per_category + rng.integers(
            cfg.intentions_per_category, size=n_items
        )
        # Items of one category/brand/intention get similar factors, so
        # those columns carry the signal of rarely shown items.
        q_item = (
            rng.normal(0.0, 1.0, (n_cat, d))[category]
            + 0.7 * rng.normal(0.0, 1.0, (n_brand, d))[brand]
            + 0.5 * rng.normal(0.0, 1.0, (cfg.intention_count, d))[intention]
            + 0.6 * rng.normal(0.0, 1.0, (n_items, d))
        )
        # Unit norm: the spread of <p_u, q_i> then does not depend on the
        # item, so CTR and CVR stay uncorrelated when selection_bias=0.
        q_item /= np.maximum(np.linalg.norm(q_item, axis=1, keepdims=True), 1e-12)
        ctr_item_bias = rng.normal(0.0, _ITEM_BIAS_STD, n_cat)[category] + rng.normal(
            0.0, _ITEM_BIAS_STD, n_items
        )
        cvr_item_bias = (
            rng.normal(0.0, _ITEM_BIAS_STD, n_brand)[brand]
            + rng.normal(0.0, _ITEM_BIAS_STD, n_shop)[shop]
            + rng.normal(0.0, _ITEM_BIAS_STD, n_items)
        )
        log_price = rng.normal(4.0, 0.8, n_cat)[category] + rng.normal(0.0, 0.4, n_items)
        price = np.round(np.exp(log_price), 2)
        log_price = np.log(np.maximum(price, 0.01))
        price_z = (log_price - log_price.mean()) / max(log_price.std(), 1e-6)

        # --- Popularity ---
        self._user_cdf = _zipf_cdf(n_users, cfg.user_zipf)
        self._user_of_rank = rng.permutation(n_users)
        self._item_cdf = _zipf_cdf(n_items, cfg.item_zipf)
        self._item_of_rank = rng.permutation(n_items)

        # Items grouped by category, for "uniform item of category c".
        self._items_by_category = np.argsort(category, kind="stable")
        self._category_start = np.searchsorted(
            category[self._items_by_category], np.arange(n_cat)
        )
        self._category_size = np.bincount(category, minlength=n_cat)

        # --- Interests: categories the user's CTR factor likes best among
        # popular candidates (categories of Zipf-drawn items, never empty).
        k = cfg.interest_categories
        m = max(_INTEREST_CANDIDATES, k)
        candidates = category[
            self._item_of_rank[_draw(rng, self._item_cdf, n_users * m)]
        ].reshape(n_users, m)
        category_vectors = np.zeros((n_cat, d))
        np.add.at(category_vectors, category, q_item)
        category_vectors /= np.maximum(
            np.linalg.norm(category_vectors, axis=1, keepdims=True), 1e-12
        )
        scores = np.einsum("ud,umd->um", p_user, category_vectors[candidates])
        scores += rng.gumbel(size=scores.shape)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        self._interests = np.take_along_axis(candidates, best, axis=1)

        # --- Behaviour history: past clicks on items of interest categories.
        history_len = np.minimum(
            rng.poisson(cfg.mean_history_length, n_users), cfg.max_history_length
        )
        history_user = np.repeat(np.arange(n_users), history_len)
        history_item = self._item_in_category(
            rng,
            self._interests[history_user, rng.integers(k, size=len(history_user))],
        )
        history_values = {
            CATEGORY: (category[history_item], n_cat),
            SHOP: (shop[history_item], n_shop),
            BRAND: (brand[history_item], n_brand),
            INTENTION: (intention[history_item], cfg.intention_count),
        }
        self._behaviour = {}
        self._behaviour_keys = {}
        for field, (values, size) in history_values.items():
            unique, counts = np.unique(
                history_user.astype(np.int64) * size + values, return_counts=True
            )
            self._behaviour[field] = (unique // size, unique % size, counts)
            self._behaviour_keys[field] = (unique, counts, size)

        self._users = {name: values + 1 for name, values in fields.items()}
        self._users[USER_ID] = np.arange(1, n_users + 1)
        self._users[CITY] = city + 1
        self._items = {
            ITEM_ID: np.arange(1, n_items + 1),
            CATEGORY: category + 1,
            SHOP: shop + 1,
            INTENTION: intention + 1,
            BRAND: brand + 1,
            PRICE: price,
        }
        self._city_names = np.array(
            [f"city_{j + 1:04d}" for j in range(cfg.num_cities)], dtype=object
        )
        self._p_user, self._r_user, self._q_item = p_user, r_user, q_item
        self._ctr_user_bias, self._cvr_user_bias = ctr_user_bias, cvr_user_bias
        self._ctr_item_bias, self._cvr_item_bias = ctr_item_bias, cvr_item_bias
        self._price_sensitivity, self._price_z = price_sensitivity, price_z
        s = cfg.num_scenarios
        self._scenario_effect = (
            np.linspace(*_SCENARIO_EFFECTS, s) if s > 1 else np.zeros(1)
        )
        weights = 1.0 / np.arange(2, s + 2)
        self._scenario_cdf = np.cumsum(weights) / weights.sum()

    def _item_in_category(self, rng, categories):
        offset = np.floor(rng.random(len(categories)) * self._category_size[categories])
        return self._items_by_category[
            self._category_start[categories] + offset.astype(np.int64)
        ]

    def _lookup(self, field, user_index, value_index):
        unique, counts, size = self._behaviour_keys[field]
        key = user_index.astype(np.int64) * size + value_index
        pos = np.minimum(np.searchsorted(unique, key), max(len(unique) - 1, 0))
        if len(unique) == 0:
            return np.zeros(len(key), dtype=np.int64)
        return np.where(unique[pos] == key, counts[pos], 0)

    def _history_column(self, field):
        """One separator-joined string per user (cached)."""
        if field not in self._history_strings:
            users, values, _ = self.behaviour(field)
            bounds = np.searchsorted(users, np.arange(self.config.num_users + 1))
            tokens = values.astype(str)
            out = np.empty(self.config.num_users, dtype=object)
            sep = MULTI_VALUE_SEPARATOR
            for u in range(self.config.num_users):
                start, end = bounds[u], min(bounds[u + 1], bounds[u] + HISTORY_MAX_LEN)
                out[u] = sep.join(tokens[start:end])
            self._history_strings[field] = out
        return self._history_strings[field]

    # === Impressions ===

    def _impressions(self, rng, rows):
        """Draws sessions, users, items and scenarios; returns the logits."""
        cfg = self.config
        mean_length = cfg.mean_session_length
        lengths = np.empty(0, dtype=np.int64)
        while lengths.sum() < rows:
            n = int(rows / mean_length * 1.1) + 16
            lengths = np.concatenate([lengths, 1 + rng.poisson(mean_length - 1, n)])
        ends = np.cumsum(lengths)
        n_sessions = int(np.searchsorted(ends, rows)) + 1
        lengths = lengths[:n_sessions]
        lengths[-1] -= ends[n_sessions - 1] - rows
        session_user = self._user_of_rank[_draw(rng, self._user_cdf, n_sessions)]
        session = np.repeat(np.arange(n_sessions), lengths)
        user = session_user[session]

        scenario = _draw(rng, self._scenario_cdf, rows)
        popular = self._item_of_rank[_draw(rng, self._item_cdf, rows)]
        interest = self._interests[
            user, rng.integers(cfg.interest_categories, size=rows)
        ]
        relevant = self._item_in_category(rng, interest)
        item = np.where(rng.random(rows) < cfg.relevant_exposure, relevant, popular)

        category = self._items[CATEGORY][item] - 1
        affinity = self._lookup(CATEGORY, user, category)
        ctr_logit = (
            np.einsum("nd,nd->n", self._p_user[user], self._q_item[item])
            + self._ctr_user_bias[user]
            + self._ctr_item_bias[item]
            + self._scenario_effect[scenario]
            + _AFFINITY_WEIGHT * np.log1p(affinity)
            + rng.normal(0.0, 1.0, rows) * cfg.ctr_noise
        )
        cvr_logit = (
            np.einsum("nd,nd->n", self._r_user[user], self._q_item[item])
            + self._cvr_user_bias[user]
            + self._cvr_item_bias[item]
            - self._price_sensitivity[user] * self._price_z[item]
            + rng.normal(0.0, 1.0, rows) * cfg.cvr_noise
        )
        return {
            "lengths": lengths,
            "session": session,
            "user": user,
            "item": item,
            "scenario": scenario,
            "affinity": affinity,
            "ctr_logit": ctr_logit,
            "cvr_logit": cvr_logit,
        }

    def _probabilities(self, draw):
        z = (draw["cvr_logit"] - self._z_mean) / self._z_std
        true_ctr = _sigmoid(
            self._a_ctr + draw["ctr_logit"] + self.config.selection_bias * z
        )
        true_cvr = _sigmoid(self._a_cvr + draw["cvr_logit"])
        return true_ctr, true_cvr

    def _calibrate(self):
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, _CALIBRATION_STREAM])
        draw = self._impressions(rng, cfg.calibration_rows)
        cvr_logit = draw["cvr_logit"]
        self._z_mean = float(cvr_logit.mean())
        std = float(cvr_logit.std())
        self._z_std = std if std > 1e-9 else 1.0
        ctr_logit = (
            draw["ctr_logit"]
            + cfg.selection_bias * (cvr_logit - self._z_mean) / self._z_std
        )
        self._a_ctr = _bisect(lambda a: _sigmoid(a + ctr_logit).mean(), cfg.ctr)
        weight = _sigmoid(self._a_ctr + ctr_logit)
        total = weight.sum()
        self._a_cvr = _bisect(
            lambda a: float(weight @ _sigmoid(a + cvr_logit)) / total, cfg.cvr
        )

    def _simulate_block(self, rng, rows, first_row, last_timestamp, first_session):
        draw = self._impressions(rng, rows)
        true_ctr, true_cvr = self._probabilities(draw)
        click = (rng.random(rows) < true_ctr).astype(np.int64)
        conversion_if_clicked = (rng.random(rows) < true_cvr).astype(np.int64)

        # Seconds between impressions: a few inside a session, a longer
        # pause before each new session; always >= 1 so time increases.
        gaps = 1 + rng.poisson(2.0, rows)
        starts = np.concatenate([[0], np.cumsum(draw["lengths"])[:-1]])
        gaps[starts] = 1 + np.floor(rng.exponential(30.0, len(starts))).astype(np.int64)
        timestamp = last_timestamp + np.cumsum(gaps)

        user, item = draw["user"], draw["item"]
        users, items = self._users, self._items
        chunk = {
            keys.ROW_ID: np.arange(first_row + 1, first_row + rows + 1, dtype=np.int64),
            keys.TIMESTAMP: timestamp.astype(np.int64),
            USER_ID: users[USER_ID][user],
        }
        for name in PROFILE_CARDINALITIES:
            chunk[name] = users[name][user]
        chunk[CITY] = self._city_names[users[CITY][user] - 1]
        chunk[HIST_CATEGORIES] = self._history_column(CATEGORY)[user]
        chunk[HIST_BRANDS] = self._history_column(BRAND)[user]
        for name in (ITEM_ID, CATEGORY, SHOP, INTENTION, BRAND, PRICE):
            chunk[name] = items[name][item]
        chunk[SCENARIO] = draw["scenario"] + 1
        chunk[CATEGORY_AFFINITY] = draw["affinity"].astype(np.int64)
        chunk[keys.CLICK] = click
        chunk[keys.CONVERSION] = click * conversion_if_clicked
        chunk[keys.TRUE_CTR] = true_ctr.astype(np.float32)
        chunk[keys.TRUE_CVR] = true_cvr.astype(np.float32)
        chunk[keys.CONVERSION_IF_CLICKED] = conversion_if_clicked
        chunk = {name: chunk[name] for name in LOG_COLUMNS}
        chunk[SESSION] = first_session + draw["session"]
        chunk[USER_INDEX] = user
        chunk[ITEM_INDEX] = item
        return chunk
