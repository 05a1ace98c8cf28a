import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.export import export_saved_model
from tfcvr.export import next_version
from tfcvr.export.check_saved_model import keras_reference
from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import example_from_row
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.testing.pretrained_tables import give_random_pretrained_tables
from tfcvr.testing.tiny_model import tiny_raw_rows
from tfcvr.features import keys
from tfcvr.features import wire


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The tiny model exported, with the model directory's vocabulary
    deleted afterwards: the SavedModel must carry its own assets."""
    data_dir, model_dir, model = trained
    base = tmp_path_factory.mktemp("saved_models")
    vocab_copy = os.path.join(base, "vocab_src")
    shutil.copytree(model_dir, vocab_copy)
    path = export_saved_model(model, str(base), name="esmm",
                              vocab_dir=vocab_copy)
    shutil.rmtree(vocab_copy)
    return str(base), path, tf.saved_model.load(path)


def _serve(loaded, rows, schema):
    columns = columns_from_rows(rows, schema)
    signature = loaded.signatures[wire.SERVING_DEFAULT]
    args = {
        arg: tf.constant(columns[spec.name])
        for arg, spec in signature.structured_input_signature[1].items()
    }
    return {k: v.numpy() for k, v in signature(**args).items()}


def _examples(loaded, serialized):
    signature = loaded.signatures[wire.PREDICT_EXAMPLES]
    out = signature(**{wire.EXAMPLES_INPUT: tf.constant(serialized)})
    return {k: v.numpy() for k, v in out.items()}


def _rows(model, model_dir, n=32, seed=3):
    return synthetic_rows(model.schema, model_dir, n, seed=seed,
                          keep_present=("item",))


def test_serving_default_equals_keras_on_transformed_rows(trained, exported):
    data_dir, model_dir, model = trained
    _, _, loaded = exported
    rows = _rows(model, model_dir) + tiny_raw_rows(16, seed=9)
    actual = _serve(loaded, rows, model.schema)
    expected = keras_reference(model, rows, model_dir)
    assert set(actual) == set(keys.SERVING_OUTPUTS)
    for name in keys.SERVING_OUTPUTS:
        assert actual[name].shape == (len(rows),)
        assert actual[name].dtype == np.float32
        np.testing.assert_allclose(actual[name], expected[name], atol=1e-5)
    # The outputs depend on the inputs (a constant model would pass the
    # comparison above too).
    assert np.std(actual[keys.CTR]) > 1e-4


def test_signatures_take_raw_values_by_name(trained, exported):
    _, _, model = trained
    _, _, loaded = exported
    signature = loaded.signatures[wire.SERVING_DEFAULT]
    specs = {s.name: s for s in signature.structured_input_signature[1].values()}
    assert specs["item"].dtype == tf.int64 and specs["item"].shape.rank == 1
    assert specs["city"].dtype == tf.string
    assert specs["history"].shape.rank == 2
    assert specs["tags"].dtype == tf.string and specs["tags"].shape.rank == 2
    assert specs["history__weight"].dtype == tf.float32
    assert specs["price"].dtype == tf.float32
    examples = loaded.signatures[wire.PREDICT_EXAMPLES]
    (spec,) = examples.structured_input_signature[1].values()
    assert spec.name == wire.EXAMPLES_INPUT and spec.dtype == tf.string


def test_unknown_ids_map_to_oov(trained, exported):
    _, model_dir, model = trained
    _, _, loaded = exported
    base = {"user": 3, "item": 1002, "city": "paris", "tags": ["news"],
            "history": [1001], "device": "ios", "price": 10.0, "age": 30.0}
    unseen_a = dict(base, user=123456, city="atlantis", tags=["zzz"])
    unseen_b = dict(base, user=654321, city="el dorado", tags=["yyy"])
    rows = [base, unseen_a, unseen_b]
    transform = FeatureTransform(model.schema, model_dir)
    columns = columns_from_rows(rows, model.schema)
    features = transform({k: tf.constant(v) for k, v in columns.items()})
    # Index layout: 0 missing, 1 the single OOV bucket, vocabulary after.
    assert features["user"].numpy().tolist()[1:] == [1, 1]
    assert features["city"].numpy().tolist()[1:] == [1, 1]
    assert features["user"].numpy()[0] > 1
    actual = _serve(loaded, rows, model.schema)
    expected = keras_reference(model, rows, model_dir)
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(actual[name], expected[name], atol=1e-5)
        assert actual[name][1] == pytest.approx(actual[name][2], abs=1e-7)
        assert actual[name][0] != pytest.approx(actual[name][1], abs=1e-7)


def test_missing_values_take_training_defaults(trained, exported):
    _, model_dir, model = trained
    _, _, loaded = exported
    full = {"user": 3, "item": 1002, "city": "paris", "tags": ["news"],
            "history": [1001, 1003], "device": "ios", "price": 10.0}
    age_default = model.schema["age"].default
    rows = [
        dict(full, age=age_default),
        dict(full),  # age absent
        dict(full, age=None),
        dict(full, history__weight=[1.0, 1.0]),
        dict(full, history__weight=[None, None]),
    ]
    out = _serve(loaded, rows, model.schema)
    for name in keys.SERVING_OUTPUTS:
        assert out[name][1] == pytest.approx(out[name][0], abs=1e-7)
        assert out[name][2] == pytest.approx(out[name][0], abs=1e-7)
        # Weights absent or NaN mean weight 1.0, as in training.
        assert out[name][3] == pytest.approx(out[name][0], abs=1e-7)
        assert out[name][4] == pytest.approx(out[name][0], abs=1e-7)
    # A missing categorical value is index 0 in the model.
    missing_city = dict(full, age=30.0, city=None)
    transform = FeatureTransform(model.schema, model_dir)
    columns = columns_from_rows([missing_city], model.schema)
    features = transform({k: tf.constant(v) for k, v in columns.items()})
    assert features["city"].numpy().tolist() == [0]
    np.testing.assert_allclose(
        _serve(loaded, [missing_city], model.schema)[keys.CTR],
        keras_reference(model, [missing_city], model_dir)[keys.CTR],
        atol=1e-5,
    )


def test_lists_longer_than_max_len_are_truncated(trained, exported):
    _, _, model = trained
    _, _, loaded = exported
    max_len = model.schema["history"].max_len
    long = [1001, 1002, 1003, 1004, 1005, 1006][: max_len + 2]
    base = {"user": 3, "item": 1002, "price": 1.0}
    rows = [dict(base, history=long), dict(base, history=long[:max_len])]
    out = _serve(loaded, rows, model.schema)
    assert out[keys.CTR][0] == pytest.approx(out[keys.CTR][1], abs=1e-7)


def test_required_feature_missing_is_an_invalid_argument(trained, exported):
    _, _, model = trained
    _, _, loaded = exported
    rows = [{"user": 3, "item": 1002}, {"user": 4}]
    with pytest.raises(tf.errors.InvalidArgumentError, match="`item` is missing"):
        _serve(loaded, rows, model.schema)
    signature = loaded.signatures[wire.PREDICT_EXAMPLES]
    serialized = [example_from_row(r, model.schema).SerializeToString()
                  for r in rows]
    with pytest.raises(tf.errors.InvalidArgumentError, match="`item` is missing"):
        signature(**{wire.EXAMPLES_INPUT: tf.constant(serialized)})


def test_infinite_numeric_values_are_an_invalid_argument(trained, exported):
    # TF Serving runs no tfcvr code: the SavedModel itself refuses what the
    # Beam job rejects, instead of predicting from it. NaN stays missing.
    _, model_dir, model = trained
    _, _, loaded = exported
    base = {"user": 3, "item": 1002, "history": [1001, 1003], "price": 10.0}
    for bad, name in [
        ({"price": float("inf")}, "price"),
        ({"age": float("-inf")}, "age"),
        ({"age": 1e308}, "age"),  # infinity once it is float32
        ({"history__weight": [1.0, float("inf")]}, "history__weight"),
    ]:
        rows = [base, dict(base, **bad)]
        message = f"Input `{name}` needs a finite float32 number"
        with pytest.raises(tf.errors.InvalidArgumentError, match=message), \
                np.errstate(over="ignore"):  # 1e308 -> float32 inf
            _serve(loaded, rows, model.schema)
        serialized = [example_from_row(r, model.schema).SerializeToString()
                      for r in rows]
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            _examples(loaded, serialized)
    out = _serve(loaded, [dict(base, age=float("nan")), base], model.schema)
    expected = keras_reference(model, [base], model_dir)
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(out[name], expected[name][0], atol=1e-5)


def test_predict_examples_equals_serving_default(trained, exported):
    _, model_dir, model = trained
    _, _, loaded = exported
    rows = _rows(model, model_dir, n=24, seed=11)
    serialized = [example_from_row(r, model.schema).SerializeToString()
                  for r in rows]
    # The dataset contract also encodes a missing value as an empty list.
    empty = example_from_row({"item": 1002}, model.schema)
    empty.features.feature["age"].float_list.value[:] = []
    empty.features.feature["city"].bytes_list.value[:] = []
    serialized.append(empty.SerializeToString())
    rows.append({"item": 1002})
    # Ids without their weight list: weight 1.0, as serving_default does.
    unweighted = example_from_row({"item": 1003, "history": [1001, 1004]},
                                  model.schema)
    del unweighted.features.feature["history__weight"]
    serialized.append(unweighted.SerializeToString())
    rows.append({"item": 1003, "history": [1001, 1004]})
    from_examples = _examples(loaded, serialized)
    from_values = _serve(loaded, rows, model.schema)
    expected = keras_reference(model, rows, model_dir)
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(from_examples[name], from_values[name],
                                   atol=1e-6)
        np.testing.assert_allclose(from_examples[name], expected[name],
                                   atol=1e-5)


def test_version_numbering(trained, tmp_path):
    _, model_dir, model = trained
    base = str(tmp_path / "saved_models")
    first = export_saved_model(model, base, name="m", vocab_dir=model_dir,
                               warmup_rows=0)
    second = export_saved_model(model, base, name="m", vocab_dir=model_dir,
                                warmup_rows=0)
    assert os.path.basename(first) == "1" and os.path.basename(second) == "2"
    fifth = export_saved_model(model, base, name="m", version=5,
                               vocab_dir=model_dir, warmup_rows=0)
    assert os.path.basename(fifth) == "5"
    assert next_version(os.path.join(base, "m")) == 6
    with pytest.raises(ValueError, match="already exists"):
        export_saved_model(model, base, name="m", version=2,
                           vocab_dir=model_dir, warmup_rows=0)
    # No staging directory is left behind; only integer versions.
    assert sorted(os.listdir(os.path.join(base, "m"))) == ["1", "2", "5"]
    default_name = export_saved_model(model, base, vocab_dir=model_dir,
                                      warmup_rows=0)
    assert default_name == os.path.join(base, "esmm", "1")
    for bad in (0, -1, "3"):
        with pytest.raises(ValueError, match="version"):
            export_saved_model(model, base, name="m", version=bad,
                               vocab_dir=model_dir, warmup_rows=0)


def test_required_features_validation(trained, tmp_path):
    _, model_dir, model = trained
    with pytest.raises(ValueError, match="required_features"):
        export_saved_model(model, str(tmp_path), name="m",
                           vocab_dir=model_dir, required_features=["nope"])


def test_no_required_features(trained, tmp_path):
    _, model_dir, model = trained
    path = export_saved_model(model, str(tmp_path), name="m",
                              vocab_dir=model_dir, required_features=[],
                              warmup_rows=0)
    loaded = tf.saved_model.load(path)
    rows = [{"user": 4}]
    out = _serve(loaded, rows, model.schema)
    np.testing.assert_allclose(
        out[keys.CTR], keras_reference(model, rows, model_dir)[keys.CTR],
        atol=1e-5,
    )


def _auxiliary_estimator(schema):
    from tfcvr.models.cvr_model import CVRModel

    class WithAuxiliary(CVRModel):
        tasks = (keys.CTR, keys.CVR, "imputation")

        def loss_terms(self, labels, outputs):
            return {}

    model = WithAuxiliary(schema=schema, embedding_dim=4,
                          backbone_config={"hidden_units": [8]})
    model.build()
    return model


def test_auxiliary_outputs_only_on_request(trained, tmp_path):
    _, model_dir, model = trained
    aux = _auxiliary_estimator(model.schema)
    rows = _rows(model, model_dir, n=8)
    expected = keras_reference(aux, rows, model_dir)
    assert "imputation" in expected
    plain = tf.saved_model.load(export_saved_model(
        aux, str(tmp_path), name="aux", vocab_dir=model_dir, warmup_rows=0))
    out = _serve(plain, rows, model.schema)
    assert set(out) == set(keys.SERVING_OUTPUTS)
    full = tf.saved_model.load(export_saved_model(
        aux, str(tmp_path), name="aux", vocab_dir=model_dir, warmup_rows=0,
        include_auxiliary=True))
    out = _serve(full, rows, model.schema)
    assert set(out) == set(keys.SERVING_OUTPUTS) | {"imputation"}
    for name, value in out.items():
        np.testing.assert_allclose(value, expected[name], atol=1e-5)


@pytest.mark.large
def test_every_registered_estimator_exports(trained, tmp_path):
    from tfcvr.models import estimator_names
    from tfcvr.models import get_estimator

    _, model_dir, model = trained
    # Extra labels (ESM2's post-click action) change no feature.
    schema = model.schema.replace(labels=model.schema.labels + (keys.ACTION,))
    rows = _rows(model, model_dir, n=8)
    for name in estimator_names():
        estimator = get_estimator(name)(
            schema=schema, embedding_dim=4,
            backbone_config={"hidden_units": [8]},
        )
        estimator.build()
        # A two-stage estimator exports what its first stage gave it
        # (CSTWA: its graphs); the outputs must still equal the Keras model's.
        give_random_pretrained_tables(estimator)
        path = export_saved_model(estimator, str(tmp_path), name=name,
                                  vocab_dir=model_dir, warmup_rows=2,
                                  include_auxiliary=True)
        out = _serve(tf.saved_model.load(path), rows, schema)
        expected = keras_reference(estimator, rows, model_dir)
        assert set(out) == set(expected), name
        for key in expected:
            np.testing.assert_allclose(out[key], expected[key], atol=1e-5,
                                       err_msg=f"{name}/{key}")


def test_feature_names_that_are_not_python_identifiers(tmp_path):
    # Ali-CCP's fields are named "101", "109_14", ...
    from tfcvr.features import FeatureSpec
    from tfcvr.features import Schema
    from tfcvr.models import ESMM
    from tfcvr.serving.model_repository import ModelRepository

    schema = Schema(features=[
        FeatureSpec("101", keys.CATEGORICAL_INT, hash_buckets=50),
        FeatureSpec("109_14", keys.MULTI_CATEGORICAL, hash_buckets=50,
                    max_len=3),
        FeatureSpec("price.v2", keys.NUMERIC),
    ], item_id="101")
    model = ESMM(schema=schema, embedding_dim=4,
                 backbone_config={"hidden_units": [8]})
    model.build()
    export_saved_model(model, str(tmp_path), name="ccp", warmup_rows=3)
    rows = [{"101": 7, "109_14": [1, 2, 3, 4], "price.v2": 0.5},
            {"101": 8}]
    expected = keras_reference(model, rows, None)
    repository = ModelRepository(str(tmp_path))
    servable = repository.get("ccp")
    assert set(servable.specs["serving_default"]) == {"101", "109_14",
                                                      "price.v2"}
    outputs = servable.run("serving_default", columns_from_rows(rows, schema))
    assert list(outputs) == list(keys.SERVING_OUTPUTS)
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(outputs[name], expected[name], atol=1e-5)


def test_bad_feature_names_are_refused(tmp_path):
    from tfcvr.features import FeatureSpec
    from tfcvr.features import Schema
    from tfcvr.models import ESMM

    schema = Schema(features=[
        FeatureSpec("user id", keys.CATEGORICAL_INT, hash_buckets=5)])
    model = ESMM(schema=schema, embedding_dim=4,
                 backbone_config={"hidden_units": [8]})
    with pytest.raises(ValueError, match="node names"):
        export_saved_model(model, str(tmp_path), name="m")


def test_export_from_a_model_directory_and_predict_one_row(trained, tmp_path):
    from tfcvr.export import load_and_predict

    data_dir, model_dir, model = trained
    path = export_saved_model(model_dir, str(tmp_path), name="esmm",
                              warmup_rows=0)
    row, outputs = load_and_predict(path, data_dir)
    assert set(outputs) == set(keys.SERVING_OUTPUTS)
    assert row.get("item") is not None
    expected = keras_reference(model, [row], model_dir)
    for name, value in outputs.items():
        assert isinstance(value, float)
        assert value == pytest.approx(float(expected[name][0]), abs=1e-5)
    row, outputs = load_and_predict(path)
    assert 0.0 <= outputs[keys.CTR] <= 1.0


def test_serving_on_raw_rows_equals_the_model_on_encoded_shards(trained, exported, tmp_path):
    # Training reads encoded shards (tfcvr encode); serving looks the raw
    # values up itself: the two must agree row by row.
    from tfcvr.data import DatasetDir
    from tfcvr.data import encode_split

    data_dir, _, model = trained
    _, _, loaded = exported
    copy = str(tmp_path / "data")
    shutil.copytree(data_dir, copy)
    encode_split(copy, keys.EVAL_SPLIT, chunk_rows=24)
    encoded = DatasetDir(copy, input_format="encoded").dataset(
        keys.EVAL_SPLIT, 40, training=False, include_extra=True)
    outputs, row_ids = {name: [] for name in keys.SERVING_OUTPUTS}, []
    for features, labels in encoded:
        predicted = model(features, training=False)
        for name in keys.SERVING_OUTPUTS:
            outputs[name].append(np.reshape(predicted[name], [-1]))
        row_ids.append(labels[keys.ROW_ID].numpy())
    # The eval split's raw rows (write_tiny_dataset_dir: seed + 1), with
    # unseen ids, missing values, multi-valued weights and a hashed field.
    rows = tiny_raw_rows(64, seed=1)
    order = np.concatenate(row_ids).astype(int)
    served = _serve(loaded, [rows[i] for i in order], model.schema)
    assert sorted(order) == list(range(64))
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(np.concatenate(outputs[name]), served[name],
                                   rtol=1e-6, atol=1e-6, err_msg=name)
    assert np.std(served[keys.CVR]) > 1e-4
