import keras
import numpy as np
import pytest

from tfcvr.models import ESMM
from tfcvr.testing import tiny_schema
from tfcvr.training.pretraining import embedding_tables
from tfcvr.training.pretraining import plan_pretraining

TINY = {"embedding_dim": 4, "backbone_config": {"hidden_units": [8]}}


def quiet(line):
    quiet.lines.append(line)


quiet.lines = []


def test_one_stage_estimators_have_no_plan():
    plan, params = plan_pretraining("esmm", tiny_schema(), dict(TINY, ctr_weight=2.0))
    assert plan is None and params == dict(TINY, ctr_weight=2.0)


def test_the_plan_takes_its_options_out_and_inherits_the_trunk():
    plan, params = plan_pretraining("cstwa", tiny_schema(), dict(
        TINY, ctr_weight=0.5, ctr_model_dir="somewhere", ctr_epochs=3,
        ctr_params={"ctcvr_weight": 1.0, "embedding_dim": 6}), say=quiet)
    # ctr_weight is CSTWA's own argument, not a stage option.
    assert params == dict(TINY, ctr_weight=0.5)
    assert plan.reused_dir == "somewhere" and plan.epochs == 3
    assert plan.estimator == "esmm"
    assert plan.params == {"embedding_dim": 6, "ctcvr_weight": 1.0,
                           "backbone_config": {"hidden_units": [8]}}
    assert plan.wanted == ("user", "item")


def test_an_ablation_without_the_tables_runs_one_stage():
    quiet.lines.clear()
    plan, params = plan_pretraining("cstwa", tiny_schema(), dict(
        TINY, use_structure_migrator=False, ctr_model="naive"), say=quiet)
    assert plan is None
    assert params == dict(TINY, use_structure_migrator=False)
    assert "one stage" in quiet.lines[-1]


def test_bad_stage_options_are_one_line_errors():
    with pytest.raises(ValueError, match="ctr_params must be a dict"):
        plan_pretraining("cstwa", tiny_schema(), {"ctr_params": 3})
    with pytest.raises(ValueError, match="ctr_epochs must be a positive int"):
        plan_pretraining("cstwa", tiny_schema(), {"ctr_epochs": 0})
    with pytest.raises(ValueError, match="one-stage estimator"):
        plan_pretraining("cstwa", tiny_schema(), {"ctr_model": "cstwa"})
    with pytest.raises(ValueError, match="no_such_argument"):
        plan_pretraining("cstwa", tiny_schema(), {"no_such_argument": 1})


def test_embedding_tables_are_the_trained_tables():
    model = ESMM(schema=tiny_schema(), **TINY)
    model.build()
    tables = embedding_tables(model, ("user", "item"))
    np.testing.assert_array_equal(
        tables["item"], keras.ops.convert_to_numpy(model.embedding.table("item")))
    assert tables["user"].shape == (12, 4)
    with pytest.raises(ValueError, match="must be a tfcvr CVRModel"):
        embedding_tables(object(), ("user",))
