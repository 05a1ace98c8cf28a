import pytest

from tfcvr.bench.grid import preset_config
from tfcvr.bench.grid.presets import preset_models


def test_presets():
    registered = ["aitm", "esmm", "multi_ipw", "naive"]
    assert preset_models("smoke", registered) == ("naive", "esmm", "multi_ipw")
    assert preset_models("smoke", ["esmm", "escm2_ips", "multi_ipw", "naive"])[-1] == "escm2_ips"
    assert preset_models("smoke", ["esmm", "naive"]) == ("naive", "esmm")
    assert preset_models("paper", registered) == tuple(registered)
    # ESM2 needs an action label the simulator does not write.
    assert preset_models("default", registered + ["esm2"]) == tuple(registered)
    smoke = preset_config("smoke", registered)
    assert len(smoke.cells()) == 3 * 2 * 2 and smoke.rows == 30_000
    assert smoke.train.epochs == 1
    default = preset_config("default", registered)
    assert default.seeds == (0, 1, 2) and len(default.selection_biases) == 3
    assert len(default.cells()) == 4 * 3 * 3 and default.train.epochs == 1
    paper = preset_config("paper", registered)
    assert paper.seeds == (0, 1, 2, 3, 4) and paper.selection_biases == (0.0, 1.0, 2.0, 3.0)
    assert paper.rows == 1_000_000 and len(paper.cells()) == 4 * 5 * 4
    assert len(paper.simulated_datasets()) == 20
    with pytest.raises(ValueError, match="Unknown preset"):
        preset_config("huge", registered)


def test_variant_groups_and_the_seed_preset():
    from tfcvr.bench.grid.presets import MODEL_GROUPS
    from tfcvr.bench.grid.presets import expand_group

    ablation = expand_group("cstwa-ablation")
    assert [v.overrides for v in ablation] == [
        {"use_structure_migrator": False}, {"use_click_perceptron": False},
        {"use_curse_escaper": False}]
    # The sweep's align_weight 1 is the plain choruscvr row (its default).
    assert [v.overrides["align_weight"] for v in MODEL_GROUPS["choruscvr-align"]] == [0.0, 0.1]
    with pytest.raises(ValueError, match="Unknown model group @nope"):
        expand_group("nope")
    registered = ["choruscvr", "cstwa", "dcmt", "ddpo", "escm2_dr", "esmm", "naive"]
    seed = preset_config("seed", registered)
    assert seed.labels == ["naive", "esmm", "escm2_dr", "dcmt", "cstwa", "choruscvr", "ddpo",
                           "cstwa-no-sm", "cstwa-no-cp", "cstwa-no-ce",
                           "choruscvr-align0", "choruscvr-align0.1"]
    # Same setting as the default preset: the plain rows are the same cells.
    default = preset_config("default", registered)
    assert {c.cell_id for c in default.cells()} <= {c.cell_id for c in seed.cells()}
    assert len(seed.cells()) == 12 * 3 * 3
    # Groups of estimators that are not registered drop out.
    assert preset_config("seed", ["esmm", "naive"]).labels == ["naive", "esmm"]
