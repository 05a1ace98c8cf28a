"""Every metric of a trained model directory on one split of a dataset."""

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.evaluation import CVREvaluator
from tfcvr.evaluation import evaluate_model
from tfcvr.evaluation import metric_names as m
from tfcvr.features.vocab_fingerprint import check_same_vocabulary
from tfcvr.training.model_dir import load_model_dir


def evaluate_dir(data_dir, model_dir, split="eval", batch_size=8192,
                 max_batches=None, progress=True, model=None,
                 protocol=m.PROTOCOL_AUTO, input_format="auto"):
    """Metrics dict of the model in `model_dir` (or `model`, when given) on
    split `split` of the dataset directory `data_dir`.

    A dataset not encoded with the model directory's vocabulary is refused
    (`check_same_vocabulary`): its indices would mean other tokens to the
    model. `protocol` is `CVREvaluator`'s; `input_format` is `DatasetDir`'s
    (the encoded shards give the rows of the raw TFRecords in the same
    order).
    """
    data = DatasetDir(data_dir, input_format=input_format)
    if model_dir is not None:
        check_same_vocabulary(model_dir, data_dir)
    if model is None:
        model, _ = load_model_dir(model_dir)
    dataset = data.dataset(split, batch_size, training=False, include_extra=True)
    return evaluate_model(
        model,
        dataset,
        user_id_feature=data.schema.user_id,
        max_batches=max_batches,
        progress=progress,
        evaluator=CVREvaluator(protocol=protocol),
    )
