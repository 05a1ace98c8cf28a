import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcvr.simulation import simulator as sim
from tfcvr.simulation.simulation_config import SimulationConfig
from tfcvr.simulation.simulator import Simulator
from tfcvr.features import keys
from tfcvr.features.feature_spec import FeatureSpec

ROWS = 50_000


def small(**overrides):
    config = dict(num_users=2000, num_items=3000, calibration_rows=20_000)
    config.update(overrides)
    return SimulationConfig(**config)


def _ratio(a, b):
    return a / b


@pytest.mark.parametrize("selection_bias", [0.0, 1.0, 3.0])
def test_expected_rates_are_calibrated_for_any_selection_bias(selection_bias):
    frame = Simulator(small(selection_bias=selection_bias, ctr=0.04, cvr=0.01)).sample(ROWS)
    p_click = frame[keys.TRUE_CTR].to_numpy(np.float64)
    p_conv = frame[keys.TRUE_CVR].to_numpy(np.float64)
    # Expected rates use the probabilities, so they are free of label noise.
    assert _ratio(p_click.mean(), 0.04) == pytest.approx(1.0, abs=0.08)
    assert _ratio((p_click * p_conv).sum() / p_click.sum(), 0.01) == pytest.approx(
        1.0, abs=0.1
    )


@pytest.mark.parametrize("selection_bias", [0.0, 2.0])
def test_realised_rates_near_targets(selection_bias):
    frame = Simulator(small(selection_bias=selection_bias, ctr=0.05, cvr=0.05)).sample(ROWS)
    click = frame[keys.CLICK].to_numpy()
    conversion = frame[keys.CONVERSION].to_numpy()
    assert click.mean() == pytest.approx(0.05, rel=0.1)
    assert conversion[click == 1].mean() == pytest.approx(0.05, rel=0.25)


def test_conversion_is_observed_only_when_clicked():
    frame = Simulator(small()).sample(ROWS)
    click = frame[keys.CLICK].to_numpy()
    conversion = frame[keys.CONVERSION].to_numpy()
    counterfactual = frame[keys.CONVERSION_IF_CLICKED].to_numpy()
    assert set(np.unique(click)) <= {0, 1}
    assert np.all(conversion[click == 0] == 0)
    np.testing.assert_array_equal(conversion, click * counterfactual)
    # The counterfactual label exists for unclicked rows too.
    assert counterfactual[click == 0].sum() > 0


def test_counterfactual_label_mean_matches_true_cvr():
    frame = Simulator(small(cvr=0.05)).sample(ROWS)
    p = frame[keys.TRUE_CVR].to_numpy(np.float64)
    y = frame[keys.CONVERSION_IF_CLICKED].to_numpy()
    sd = np.sqrt((p * (1 - p)).sum())
    assert abs(y.sum() - p.sum()) < 4 * sd
    p = frame[keys.TRUE_CTR].to_numpy(np.float64)
    y = frame[keys.CLICK].to_numpy()
    assert abs(y.sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())


def _mar_world(selection_bias):
    # Flatter popularity: fewer heavy users/items, so the world's own chance
    # correlations stay small next to the tolerance.
    return Simulator(
        small(
            num_users=3000,
            num_items=3000,
            user_zipf=0.5,
            item_zipf=0.5,
            selection_bias=selection_bias,
            ctr=0.05,
            cvr=0.2,
        )
    ).sample(ROWS)


def test_no_selection_bias_is_missing_at_random():
    frame = _mar_world(0.0)
    click = frame[keys.CLICK].to_numpy()
    y = frame[keys.CONVERSION_IF_CLICKED].to_numpy()
    # Click rate is the same whether or not the impression would convert.
    assert _ratio(click[y == 1].mean(), click[y == 0].mean()) == pytest.approx(1.0, abs=0.2)
    assert _ratio(y[click == 1].mean(), y[click == 0].mean()) == pytest.approx(1.0, abs=0.2)
    p_click = frame[keys.TRUE_CTR].to_numpy(np.float64)
    p_conv = frame[keys.TRUE_CVR].to_numpy(np.float64)
    lift = (p_click * p_conv).mean() / (p_click.mean() * p_conv.mean())
    assert lift == pytest.approx(1.0, abs=0.15)


def test_strong_selection_bias_makes_clicks_unrepresentative():
    frame = _mar_world(2.0)
    click = frame[keys.CLICK].to_numpy()
    y = frame[keys.CONVERSION_IF_CLICKED].to_numpy()
    assert _ratio(y[click == 1].mean(), y[click == 0].mean()) > 2.5
    assert _ratio(click[y == 1].mean(), click[y == 0].mean()) > 2.5


def _target_encoding_auc(frame, label, columns, n_train):
    train = frame.iloc[:n_train]
    prior = train[label].mean()
    score = np.zeros(len(frame) - n_train)
    for column in columns:
        stats = train.groupby(column)[label].agg(["sum", "count"])
        rate = (stats["sum"] + 50 * prior) / (stats["count"] + 50)
        test_rate = frame[column].iloc[n_train:].map(rate).fillna(prior).to_numpy()
        score += np.log(test_rate / (1 - test_rate)) - np.log(prior / (1 - prior))
    return roc_auc_score(frame[label].to_numpy()[n_train:], score)


def test_truth_is_learnable_from_observable_columns():
    frame = Simulator(small(selection_bias=0.0, ctr=0.1, cvr=0.2)).sample(ROWS)
    columns = [
        sim.USER_ID, sim.ITEM_ID, sim.CATEGORY, sim.BRAND, sim.SHOP,
        sim.SCENARIO, sim.AGE, sim.GENDER, sim.CONSUMPTION_LEVEL,
        sim.OCCUPATION, sim.CITY, sim.USER_PROFILE, sim.CATEGORY_AFFINITY,
    ]
    assert _target_encoding_auc(frame, keys.CLICK, columns, 40_000) > 0.6
    assert _target_encoding_auc(frame, keys.CONVERSION_IF_CLICKED, columns, 40_000) > 0.6
    # The oracle does better than the simple model, but is not perfect.
    oracle = roc_auc_score(frame[keys.CLICK], frame[keys.TRUE_CTR])
    assert 0.65 < oracle < 0.95


def test_same_seed_same_rows_other_seed_other_rows():
    a = list(Simulator(small(seed=3)).iter_chunks(1000))
    b = list(Simulator(small(seed=3)).iter_chunks(1000))
    c = list(Simulator(small(seed=4)).iter_chunks(1000))
    for name in sim.LOG_COLUMNS:
        np.testing.assert_array_equal(a[0][name], b[0][name])
    assert not np.array_equal(a[0][keys.TRUE_CTR], c[0][keys.TRUE_CTR])


def test_chunks_cover_rows_in_time_order():
    rows = sim.BLOCK_ROWS + 123
    chunks = list(Simulator(small()).iter_chunks(rows, context=True))
    assert [len(c[keys.ROW_ID]) for c in chunks] == [sim.BLOCK_ROWS, 123]
    row_id = np.concatenate([c[keys.ROW_ID] for c in chunks])
    np.testing.assert_array_equal(row_id, np.arange(1, rows + 1))
    timestamp = np.concatenate([c[keys.TIMESTAMP] for c in chunks])
    assert np.all(np.diff(timestamp) > 0)
    session = np.concatenate([c[sim.SESSION] for c in chunks])
    assert np.all(np.diff(session) >= 0)
    user = np.concatenate([c[sim.USER_ID] for c in chunks])
    # One user per session.
    changes = np.flatnonzero(np.diff(session) == 0)
    np.testing.assert_array_equal(user[changes], user[changes + 1])
    assert set(chunks[0]) == set(sim.LOG_COLUMNS) | set(sim.CONTEXT_COLUMNS)


def test_popularity_is_zipf_like():
    frame = Simulator(small()).sample(ROWS)
    for column, size in ((sim.USER_ID, 2000), (sim.ITEM_ID, 3000)):
        counts = np.sort(frame[column].value_counts().to_numpy())[::-1]
        top = counts[: size // 100].sum() / ROWS
        # Top 1% of ids: far more than the 1% uniform popularity would give.
        assert top > 0.15
        assert counts[0] > 20 * np.median(counts)


def test_ids_and_values_are_in_range():
    config = small()
    frame = Simulator(config).sample(5000)
    assert frame[sim.USER_ID].between(1, config.num_users).all()
    assert frame[sim.ITEM_ID].between(1, config.num_items).all()
    assert frame[sim.CATEGORY].between(1, config.category_count).all()
    assert frame[sim.BRAND].between(1, config.brand_count).all()
    assert frame[sim.SHOP].between(1, config.shop_count).all()
    assert frame[sim.INTENTION].between(1, config.intention_count).all()
    assert frame[sim.SCENARIO].between(1, config.num_scenarios).all()
    for name, size in sim.PROFILE_CARDINALITIES.items():
        assert frame[name].between(1, size).all()
    assert (frame[sim.PRICE] > 0).all()
    assert frame[keys.TRUE_CTR].between(0, 1).all()
    assert frame[keys.TRUE_CVR].between(0, 1).all()
    assert frame[sim.CITY].str.startswith("city_").all()


def test_item_attributes_are_fixed_per_item():
    frame = Simulator(small()).sample(ROWS)
    for column in (sim.CATEGORY, sim.BRAND, sim.SHOP, sim.INTENTION, sim.PRICE):
        assert frame.groupby(sim.ITEM_ID)[column].nunique().max() == 1
    for column in (sim.GENDER, sim.AGE, sim.CITY, sim.HIST_CATEGORIES):
        assert frame.groupby(sim.USER_ID)[column].nunique().max() == 1


def test_category_affinity_matches_behaviour_history():
    simulator = Simulator(small())
    frame = simulator.sample(20_000)
    history = frame[sim.HIST_CATEGORIES].str.split(sim.MULTI_VALUE_SEPARATOR)
    in_history = [
        str(c) in h for c, h in zip(frame[sim.CATEGORY], history)
    ]
    np.testing.assert_array_equal(frame[sim.CATEGORY_AFFINITY] > 0, in_history)
    assert 0.05 < np.mean(in_history) < 0.9
    users, values, counts = simulator.behaviour(sim.CATEGORY)
    row = frame.iloc[int(np.flatnonzero(frame[sim.CATEGORY_AFFINITY] > 0)[0])]
    mask = (users == row[sim.USER_ID] - 1) & (values == row[sim.CATEGORY])
    assert counts[mask].tolist() == [row[sim.CATEGORY_AFFINITY]]


def test_behaviour_is_sorted_most_frequent_first():
    users, values, counts = Simulator(small()).behaviour(sim.BRAND)
    assert np.all(np.diff(users) >= 0)
    same_user = np.diff(users) == 0
    assert np.all(np.diff(counts)[same_user] <= 0)
    with pytest.raises(ValueError, match="No behaviour field"):
        Simulator(small()).behaviour("price")


def test_input_spec_describes_the_feature_columns():
    spec = Simulator(small()).input_spec()
    columns = list(spec["columns"])
    extras = [keys.ROW_ID, keys.TIMESTAMP, keys.CLICK, keys.CONVERSION]
    extras += list(sim.GROUND_TRUTH_COLUMNS)
    assert sorted(columns + extras) == sorted(sim.LOG_COLUMNS)
    assert spec["labels"] == {keys.CLICK: keys.CLICK, keys.CONVERSION: keys.CONVERSION}
    assert spec["extra_columns"] == [keys.ROW_ID, *sim.GROUND_TRUTH_COLUMNS]
    assert spec["row_key"] == keys.ROW_ID
    assert spec["timestamp"] == keys.TIMESTAMP
    assert spec["user_id"] in columns and spec["item_id"] in columns
    for name, column in spec["columns"].items():
        FeatureSpec(name=name, **column)
    assert spec["columns"][sim.HIST_CATEGORIES]["separator"] == "|"
    assert spec["columns"][sim.CITY]["kind"] == keys.CATEGORICAL_STRING


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ctr": 0.0}, "ctr"),
        ({"cvr": 1.5}, "cvr"),
        ({"num_users": 0}, "num_users"),
        ({"num_items": 2.5}, "num_items"),
        ({"selection_bias": float("nan")}, "selection_bias"),
        ({"relevant_exposure": 1.2}, "relevant_exposure"),
        ({"mean_session_length": 0.5}, "mean_session_length"),
        ({"num_categories": 0}, "num_categories"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=f"{message}.*Received"):
        small(**overrides)


def test_config_round_trip_and_derived_cardinalities():
    config = SimulationConfig(num_items=30_000, num_brands=77)
    assert SimulationConfig.from_dict(config.to_dict()) == config
    assert config.category_count == 200
    assert config.brand_count == 77
    assert config.intention_count == 200 * config.intentions_per_category
    with pytest.raises(ValueError, match="unknown keys"):
        SimulationConfig.from_dict({"rows": 3})


def test_simulator_rejects_bad_rows_and_config():
    simulator = Simulator(small())
    with pytest.raises(ValueError, match="rows"):
        next(simulator.iter_chunks(0))
    with pytest.raises(ValueError, match="SimulationConfig"):
        Simulator({"num_users": 3})
