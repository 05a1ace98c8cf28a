import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfcvr.export import export_saved_model
from tfcvr.export import read_warmup_requests
from tfcvr.export.warmup import WARMUP_DIR
from tfcvr.export.warmup import WARMUP_FILE
from tfcvr.export.warmup import predict_request
from tfcvr.export.warmup import write_warmup_requests
from tfcvr.features import wire


def test_warmup_file_holds_prediction_logs_that_run(trained, tmp_path):
    _, model_dir, model = trained
    path = export_saved_model(model, str(tmp_path), name="esmm",
                              vocab_dir=model_dir, warmup_rows=5)
    warmup = os.path.join(path, WARMUP_DIR, WARMUP_FILE)
    assert os.path.exists(warmup)
    # The raw file is a TFRecord of PredictionLog protos.
    records = list(tf.data.TFRecordDataset(warmup).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert len(logs) == 3
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    signatures = [log.predict_log.request.model_spec.signature_name
                  for log in logs]
    assert signatures == [wire.SERVING_DEFAULT,
                          wire.SERVING_DEFAULT,
                          wire.PREDICT_EXAMPLES]
    assert {log.predict_log.request.model_spec.name for log in logs} == {"esmm"}
    batch_one = logs[0].predict_log.request
    assert set(batch_one.inputs) == {
        "user", "item", "history", "history__weight", "tags", "city",
        "device", "price", "age",
    }
    assert tf.make_ndarray(batch_one.inputs["item"]).shape == (1,)
    assert tf.make_ndarray(logs[1].predict_log.request.inputs["item"]).shape == (5,)
    # Replaying them against the SavedModel works, as TF Serving does.
    loaded = tf.saved_model.load(path)
    for log in read_warmup_requests(path):
        request = log.predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name]
        args = {
            arg: tf.constant(tf.make_ndarray(request.inputs[spec.name]))
            for arg, spec in signature.structured_input_signature[1].items()
        }
        outputs = signature(**args)
        assert np.all(np.isfinite(outputs["ctr"].numpy()))


def test_no_warmup_when_zero_rows(trained, tmp_path):
    _, model_dir, model = trained
    path = export_saved_model(model, str(tmp_path), name="esmm",
                              vocab_dir=model_dir, warmup_rows=0)
    assert not os.path.exists(os.path.join(path, WARMUP_DIR, WARMUP_FILE))


def test_warmup_rows_missing_a_required_feature_are_refused(trained, tmp_path):
    import pytest

    _, model_dir, model = trained
    with pytest.raises(ValueError, match="warmup request fails"):
        export_saved_model(model, str(tmp_path), name="esmm",
                           vocab_dir=model_dir, warmup_rows=[{"user": 3}])
    assert not os.path.exists(os.path.join(str(tmp_path), "esmm", "1"))


def test_write_and_read_round_trip(tmp_path):
    request = predict_request(
        "m", {"x": np.array([1, 2], np.int64), "s": np.array(["a", "b"], object)},
        "serving_default",
    )
    write_warmup_requests(str(tmp_path), [request, request])
    logs = read_warmup_requests(str(tmp_path))
    assert len(logs) == 2
    parsed = logs[0].predict_log.request
    assert tf.make_ndarray(parsed.inputs["x"]).tolist() == [1, 2]
    assert tf.make_ndarray(parsed.inputs["s"]).tolist() == [b"a", b"b"]


def test_serialized_examples_keep_trailing_nul_bytes(tmp_path):
    # A serialized Example can end with 0x00; fixed-width numpy bytes
    # would drop it and corrupt the record.
    payload = [b"\x0a\x02ab\x00", b"x\x00\x00"]
    request = predict_request("m", {"examples": payload}, "predict_examples")
    write_warmup_requests(str(tmp_path), [request])
    (log,) = read_warmup_requests(str(tmp_path))
    values = tf.make_ndarray(log.predict_log.request.inputs["examples"])
    assert values.tolist() == payload
