from tfcvr.export import export_saved_model
from tfcvr.export.check_saved_model import compare_outputs
from tfcvr.export.check_saved_model import keras_reference
from tfcvr.export.check_saved_model import outputs_in_fresh_process
from tfcvr.export.sample_rows import synthetic_rows


def _clone(model):
    clone = type(model).from_config(model.get_config())
    clone.build()
    clone.set_weights(model.get_weights())
    return clone


def test_fresh_process_without_tfcvr_matches_and_detects_changes(
    trained, tmp_path
):
    _, model_dir, model = trained
    path = export_saved_model(model, str(tmp_path), name="esmm",
                              vocab_dir=model_dir, warmup_rows=0)
    rows = synthetic_rows(model.schema, model_dir, 16, seed=2,
                          keep_present=("item",))
    # One fresh process (importing tfcvr fails in it) runs both signatures.
    actual = outputs_in_fresh_process(path, rows, model.schema)
    report = compare_outputs(actual, keras_reference(model, rows, model_dir))
    assert report["ok"], report
    assert report["rows"] == 16
    assert set(report["max_abs_diff"]) == {
        f"{sig}/{out}"
        for sig in ("serving_default", "predict_examples")
        for out in ("ctr", "cvr", "ctcvr")
    }
    # The same outputs against a model whose CTR head moved: not ok.
    changed = _clone(model)
    kernel, bias = changed.heads[0].get_weights()
    changed.heads[0].set_weights([kernel, bias + 0.5])
    report = compare_outputs(actual, keras_reference(changed, rows, model_dir))
    assert not report["ok"]
    assert report["max_abs_diff"]["serving_default/ctr"] > 1e-3
    assert report["max_abs_diff"]["predict_examples/ctr"] > 1e-3
