import pytest

from tfcvr.bench.grid import ExternalDataset
from tfcvr.bench.grid import GridCell
from tfcvr.bench.grid import GridConfig
from tfcvr.bench.grid import ModelVariant
from tfcvr.bench.grid import SimulatedDataset
from tfcvr.bench.grid import TrainSettings
from tfcvr.features import keys


def _config(**overrides):
    fields = dict(models=("naive", "esmm"), seeds=(0, 1), selection_biases=(0.0, 2.0),
                  rows=1000, ctr=0.1, cvr=0.1,
                  train=TrainSettings(embedding_dim=4, backbone_config={"hidden_units": [8]}))
    fields.update(overrides)
    return GridConfig(**fields)


def test_expansion_is_models_x_seeds_x_datasets_grouped_by_dataset():
    cells = _config().cells()
    assert len(cells) == 2 * 2 * 2
    assert len({c.cell_id for c in cells}) == 8
    # Per-run data: each (bias, seed) is its own simulated dataset.
    assert [(c.dataset.selection_bias, c.dataset.seed, c.seed, c.model) for c in cells[:4]] == [
        (0.0, 0, 0, "naive"), (0.0, 0, 0, "esmm"), (0.0, 1, 1, "naive"), (0.0, 1, 1, "esmm")]
    assert len(_config().simulated_datasets()) == 4
    # Every cell of one dataset comes before the next dataset's.
    order = [c.dataset for c in cells]
    assert all(order.index(d) <= i for i, d in enumerate(order))


def test_fixed_data_seed_shares_one_dataset_per_bias():
    config = _config(data_seed=7)
    assert [(d.selection_bias, d.seed) for d in config.simulated_datasets()] == [(0.0, 7), (2.0, 7)]
    assert {c.dataset.seed for c in config.cells()} == {7}
    assert len(config.cells()) == 8


def test_external_datasets_add_cells(tmp_path):
    data = tmp_path / "aliccp_small"
    data.mkdir()
    (data / keys.SCHEMA_FILE).write_text('{"features": [], "extra_columns": []}')
    (data / "summary.json").write_text('{"format": "aliccp_csv"}')
    external = ExternalDataset.from_path(str(data))
    assert external.aliccp and not external.has_ground_truth
    assert external.label == "aliccp_small"
    config = _config(selection_biases=(), datasets=(external,))
    cells = config.cells()
    assert len(cells) == 4 and all(c.dataset is external for c in cells)


def test_external_dataset_errors_and_labels(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        ExternalDataset.from_path(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="schema.json"):
        ExternalDataset.from_path(str(tmp_path))
    (tmp_path / keys.SCHEMA_FILE).write_text(
        '{"extra_columns": ["true_cvr", "conversion_if_clicked"]}')
    named = ExternalDataset.from_path(f"real={tmp_path}")
    assert named.label == "real" and named.has_ground_truth and not named.aliccp
    assert ExternalDataset.from_path(f"aliccp-full={tmp_path}").aliccp
    before = named.fingerprint
    (tmp_path / keys.SCHEMA_FILE).write_text('{"extra_columns": []}')
    assert ExternalDataset.from_path(f"real={tmp_path}").fingerprint != before


def test_cell_id_is_a_hash_of_the_full_config():
    cell = _config().cells()[0]
    same = GridCell.from_dict(cell.to_dict())
    assert same.cell_id == cell.cell_id and len(cell.cell_id) == 16
    # Spelling does not matter: 2 and 2.0, dict order.
    a = TrainSettings(learning_rate=2, backbone_config={"a": 1, "b": [1, 2]})
    b = TrainSettings(learning_rate=2.0, backbone_config={"b": (1, 2), "a": 1.0})
    ds = SimulatedDataset(selection_bias=1, rows=1000)
    assert (GridCell("esmm", 0, ds, a).cell_id
            == GridCell("esmm", 0, SimulatedDataset(selection_bias=1.0, rows=1000), b).cell_id)
    # Any setting changes it.
    changed = [
        GridCell("naive", 0, ds, a),
        GridCell("esmm", 1, ds, a),
        GridCell("esmm", 0, SimulatedDataset(selection_bias=1, rows=1001), a),
        GridCell("esmm", 0, SimulatedDataset(selection_bias=1, rows=1000, cvr_noise=0), a),
        GridCell("esmm", 0, ds, a.replace(epochs=2)),
        GridCell("esmm", 0, ds, a.replace(params={"ctr_weight": 0.5})),
        GridCell("esmm", 0, ds, a, eval_batch_size=100),
    ]
    ids = {c.cell_id for c in changed} | {GridCell("esmm", 0, ds, a).cell_id}
    assert len(ids) == len(changed) + 1


def test_cvr_noise_is_optional_and_labelled():
    # Unset, it leaves the keys of existing datasets alone.
    plain = SimulatedDataset(selection_bias=2, rows=1000)
    assert "cvr_noise" not in plain.to_dict() and plain.label == "sim-bias2"
    ignorable = SimulatedDataset(selection_bias=2, rows=1000, cvr_noise=0.0)
    assert ignorable.label == "sim-bias2-cvrnoise0"
    assert SimulatedDataset.from_dict(ignorable.to_dict()) == ignorable
    assert ignorable.key != plain.key
    config = _config().replace(cvr_noise=0.0)
    assert {d.cvr_noise for d in config.simulated_datasets()} == {0.0}
    for bad in (-1.0, float("nan"), True, "0"):
        with pytest.raises(ValueError, match="cvr_noise"):
            SimulatedDataset(selection_bias=1, cvr_noise=bad)


def test_group_id_ignores_only_the_seeds():
    cells = _config().cells()
    naive_bias0 = [c for c in cells if c.model == "naive" and c.dataset.selection_bias == 0.0]
    assert len(naive_bias0) == 2
    assert naive_bias0[0].group_id == naive_bias0[1].group_id
    assert len({c.group_id for c in cells}) == 4


def test_model_params_deep_merge_params_last():
    settings = TrainSettings(embedding_dim=8, backbone_config={"hidden_units": [32, 16]},
                             params={"backbone_config": {"dropout": 0.1}, "ctr_weight": 2.0})
    assert settings.model_params() == {
        "embedding_dim": 8, "backbone": "towers",
        "backbone_config": {"hidden_units": [32, 16], "dropout": 0.1}, "ctr_weight": 2.0}


@pytest.mark.parametrize("fields, message", [
    ({"models": ()}, "at least one estimator"),
    ({"seeds": ()}, "at least one seed"),
    ({"seeds": (0, 0)}, "duplicates"),
    ({"selection_biases": (), "datasets": ()}, "no dataset"),
    ({"selection_biases": (-1.0,)}, "selection_bias"),
    ({"rows": 5}, "rows"),
    ({"ctr": 1.5}, "ctr"),
    ({"data_seed": -1}, "data_seed"),
])
def test_config_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        _config(**fields)


def test_train_settings_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainSettings(epochs=0)
    with pytest.raises(ValueError, match="precision"):
        TrainSettings(precision="float8")
    with pytest.raises(ValueError, match="JSON"):
        TrainSettings(params={"x": object()})
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        TrainSettings(optimizer="sgd")


def test_optimizer_other_than_the_default_is_part_of_a_cell():
    ds = SimulatedDataset(selection_bias=1, rows=1000)
    adam, lazy = TrainSettings(), TrainSettings(optimizer="lazy_adam")
    # The default is left out: cells recorded before the setting keep their ids.
    assert "optimizer" not in adam.to_dict()
    assert TrainSettings.from_dict(adam.to_dict()) == adam
    assert TrainSettings.from_dict(lazy.to_dict()) == lazy
    assert GridCell("esmm", 0, ds, adam).cell_id != GridCell("esmm", 0, ds, lazy).cell_id


def test_variants_are_cells_of_their_own():
    ds = SimulatedDataset(selection_bias=1, rows=1000)
    settings = TrainSettings(params={"ctr_weight": 0.5, "backbone_config": {"dropout": 0.1}})
    plain = GridCell("cstwa", 0, ds, settings)
    # A plain variant is the plain estimator: same config, same id.
    assert GridCell("cstwa", 0, ds, settings, variant=ModelVariant.plain("cstwa")) == plain
    assert "variant" not in plain.to_dict() and plain.label == "cstwa"
    off = GridCell("cstwa", 0, ds, settings,
                   variant=ModelVariant("no-sm", "cstwa", {"use_structure_migrator": False}))
    on = GridCell("cstwa", 0, ds, settings,
                  variant=ModelVariant("sm", "cstwa", {"use_structure_migrator": True}))
    other = GridCell("cstwa", 0, ds, settings,
                     variant=ModelVariant("no-sm", "cstwa", {"use_structure_migrator": 0.5}))
    assert len({c.cell_id for c in (plain, off, on, other)}) == 4
    assert len({c.group_id for c in (plain, off, on, other)}) == 4
    assert GridCell.from_dict(off.to_dict()) == off
    assert off.label == "no-sm" and off.describe().startswith("no-sm seed=0")
    # The overrides win over the shared setting, nested dicts merged.
    wide = GridCell("cstwa", 0, ds, settings, variant=ModelVariant(
        "wide", "cstwa", {"ctr_weight": 2.0, "backbone_config": {"hidden_units": [8]}}))
    assert wide.model_params()["ctr_weight"] == 2.0
    assert wide.model_params()["backbone_config"] == {"dropout": 0.1, "hidden_units": [8]}
    with pytest.raises(ValueError, match="is of 'cstwa'"):
        GridCell("esmm", 0, ds, settings, variant=off.variant)


def test_grid_of_variants():
    variant = ModelVariant("naive-w", "naive", {"ctr_weight": 2.0})
    config = _config(models=("naive", variant, ModelVariant.plain("esmm")))
    assert config.models == ("naive", variant, "esmm")
    assert config.labels == ["naive", "naive-w", "esmm"]
    labels = {c.label for c in config.cells()}
    assert labels == {"naive", "naive-w", "esmm"}
    assert config.to_dict()["models"][1] == variant.to_dict()
    with pytest.raises(ValueError, match="duplicate labels: naive-w"):
        _config(models=(variant, ModelVariant("naive-w", "esmm", {"ctr_weight": 1.0})))
