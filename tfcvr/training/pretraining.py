"""The first stage of estimators trained in two stages.

An estimator class with a `pretraining` `PretrainingStage` (e.g. CSTWA) is
trained after another model, whose embedding tables it is handed. This
module is that hook, for any such estimator: it takes the stage's options
out of the run's parameters, trains the first model through the caller's
own training function (or loads a trained model directory and checks that
it matches the dataset), reads the tables the estimator asks for, and hands
them over. It imports no TensorFlow, so `tfcvr bench train --source
synthetic` can use it under JAX.
"""

import filecmp
import os
import time

import numpy as np

from tfcvr.models.pretraining_stage import INHERITED
from tfcvr.models.registry import build_estimator
from tfcvr.models.registry import get_estimator

# Where a run saves its first-stage model, inside its model directory; the
# directory can be reused with `--param <name>_model_dir=...`.
STAGE_DIR = "pretrained"


def plan_pretraining(model, schema, params, say=None):
    """`(plan, params)`: the first stage that `model` needs on `schema`, or
    None, and `params` without the stage's options.

    None when the estimator declares no stage, or when, with these
    parameters, it wants no table (an ablation that does not use them); a
    wrong parameter is a one-line ValueError before any training.
    """
    say = say or _say
    params = dict(params or {})
    stage = getattr(get_estimator(model), "pretraining", None)
    if stage is None:
        return None, params
    options = {name: params.pop(name) for name in stage.options if name in params}
    wanted = tuple(build_estimator(model, schema, params).pretrained_tables_wanted())
    if not wanted:
        say(f"{model}: no pre-trained tables wanted with these parameters; "
            f"one stage")
        return None, params
    return PretrainingPlan(model, stage, params, options, wanted, say), params


class PretrainingPlan:
    """The first stage of one run; `run` it, then `hand_over` its tables."""

    def __init__(self, model, stage, params, options, wanted, say=None):
        self.model = model
        self.stage = stage
        self.wanted = wanted
        self.say = say or _say
        self.reused_dir = options.get(stage.option("model_dir"))
        self.estimator = options.get(stage.option("model"), stage.estimator)
        extra = options.get(stage.option("params"), {})
        if not isinstance(extra, dict):
            raise ValueError(
                f"{stage.option('params')} must be a dict of constructor "
                f"arguments. Received: {extra!r}"
            )
        self.params = {k: params[k] for k in INHERITED if k in params}
        self.params.update(stage.params)
        self.params.update(extra)
        self.epochs = options.get(stage.option("epochs"))
        if self.epochs is not None and (
            isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
            or self.epochs < 1
        ):
            raise ValueError(
                f"{stage.option('epochs')} must be a positive int. Received: "
                f"{self.epochs!r}"
            )
        if getattr(get_estimator(self.estimator), "pretraining", None):
            raise ValueError(
                f"{stage.option('model')} must be a one-stage estimator. "
                f"Received: {self.estimator!r}"
            )
        self.source = None
        self.seconds = 0.0
        self.hand_over_seconds = 0.0

    def run(self, train_model, data_dir, schema, model_dir=None, epochs=1):
        """Trains the first model with `train_model(model=, params=,
        epochs=, model_dir=)` (returning the model), or loads the reused
        directory; returns the model."""
        started = time.perf_counter()
        if self.reused_dir is not None and data_dir is None:
            raise ValueError(
                f"{self.stage.option('model_dir')} is checked against a "
                f"dataset directory, and this run reads none."
            )
        if self.reused_dir is not None:
            self.say(f"stage 1/2: reusing the {self.stage.name} model in "
                     f"{self.reused_dir}")
            self.source = load_matching(self.reused_dir, data_dir, schema,
                                        self.wanted, self.stage.option("model_dir"))
        else:
            stage_dir = model_dir and os.path.join(model_dir, STAGE_DIR)
            self.say(f"stage 1/2: training the {self.stage.name} model "
                     f"({self.estimator} {self.params}), the "
                     f"{self.stage.description}")
            self.source = train_model(
                model=self.estimator, params=self.params,
                epochs=self.epochs or epochs, model_dir=stage_dir,
            )
        self.seconds = time.perf_counter() - started
        return self.source

    def hand_over(self, net):
        """Gives `net` the first model's tables (e.g. to build graphs)."""
        started = time.perf_counter()
        tables = embedding_tables(self.source, self.wanted)
        net.set_pretrained_tables(tables)
        self.hand_over_seconds = time.perf_counter() - started
        self.say(f"stage 1/2: done in {self.seconds:.1f}s; {self.model} took "
                 f"the tables of {', '.join(self.wanted)} in "
                 f"{self.hand_over_seconds:.1f}s")
        self.say(f"stage 2/2: training {self.model}")

    def record(self):
        """What the run's record keeps of the first stage."""
        return {
            "model": self.estimator,
            "params": self.params,
            "reused_model_dir": self.reused_dir,
            "tables": list(self.wanted),
            "seconds": self.seconds,
            "hand_over_seconds": self.hand_over_seconds,
        }


def _say(line):
    print(line, flush=True)


def embedding_tables(model, names):
    """`{feature: (rows, dim) float32 array}` of a trained `CVRModel`."""
    embedding = getattr(model, "embedding", None)
    if not callable(getattr(embedding, "table", None)):
        raise ValueError(
            f"A first-stage model must be a tfcvr CVRModel with field "
            f"embeddings. Received: {type(model).__name__}"
        )
    import keras

    out = {}
    for name in names:
        spec = model.schema[name]
        out[name] = np.asarray(keras.ops.convert_to_numpy(
            embedding.table(spec.embedding_group or spec.name)), "float32")
    return out


def load_matching(model_dir, data_dir, schema, names, option="model_dir"):
    """The model of a trained model directory whose schema and vocabulary
    files are the dataset's; otherwise a one-line ValueError naming both."""
    from tfcvr.training.model_dir import load_model_dir

    model, _ = load_model_dir(model_dir)
    differs = None
    if model.schema.features != schema.features:
        differs = "schema"
    else:
        for name in names:
            vocab = schema[name].vocab_file
            if vocab is None:
                continue
            ours = os.path.join(data_dir, vocab)
            theirs = os.path.join(model_dir, vocab)
            if not (os.path.exists(theirs) and os.path.exists(ours)
                    and filecmp.cmp(ours, theirs, shallow=False)):
                differs = f"vocabulary of `{name}`"
                break
    if differs:
        raise ValueError(
            f"{option}={model_dir} was trained on another {differs} than the "
            f"dataset {data_dir}; train it on this dataset or leave {option} out."
        )
    return model
