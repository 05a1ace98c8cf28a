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
