import keras
import numpy as np
from keras import ops

from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.layers.backbones.backbone import get_backbone
from tfcvr.layers.embedding.feature_embedding import FeatureEmbedding
from tfcvr.losses import functional as F
from tfcvr.models.loss_monitor import LossMonitor
from tfcvr.serialization import subclass_config


TRAIN_METRICS = ("auc", "none")
DEFAULT_TRAIN_METRICS = "auc"
AUC_METRICS = ("ctr_auc", "ctcvr_auc", "cvr_auc_clicked")


def _can_update_state():
    """Whether a metric may be updated here: always on TensorFlow; on JAX
    only inside Keras's stateless scope (its train and test steps), since
    an update under a bare `jax.grad` would leak a tracer."""
    if keras.backend.backend() != "jax":
        return True
    # Keras exports no public test for the scope.
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    return in_stateless_scope()


def check_weights(**weights):
    """Raises for a negative loss weight, naming it."""
    for name, value in weights.items():
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(
                f"{name} must be a number >= 0. Received: {name}={value!r}"
            )


def check_floors(**floors):
    """Raises for a propensity floor outside (0, 1), naming it."""
    for name, value in floors.items():
        if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise ValueError(
                f"{name} must be in (0, 1). Received: {name}={value!r}"
            )


def check_flags(**flags):
    """Raises for a switch that is not a bool, naming it."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(
                f"{name} must be True or False. Received: {name}={value!r}"
            )


class CVRModel(keras.Model):
    """Base of every estimator: features -> pCTR, pCVR, pCTCVR.

    The trunk is shared: schema-driven field embeddings, then a multi-task
    backbone giving one representation per entry of `tasks`, then a
    one-unit logit head per task. `call` returns a dict of `(batch, 1)`
    probabilities with at least `ctr`, `cvr` and `ctcvr` (= ctr * cvr);
    auxiliary tasks add keys of their own. A subclass declares `tasks`,
    overrides `outputs_from_logits` when its outputs are not plain sigmoids,
    and implements `loss_terms(labels, outputs)`: a dict of named scalar
    terms whose sum is the objective, each written with the batch
    statistics of `tfcvr.losses.functional` (`batch_mean`, `batch_sum`,
    ...) so that it is right under any number of replicas. Keras `fit`
    works as for any model, on one device or under a `tf.distribute`
    strategy; the training logs show each term as `<name>_loss`
    (`loss_monitor`).

    Args:
        schema: `tfcvr.features.Schema` or its dict.
        embedding_dim: int. Field embedding size. Defaults to 16.
        backbone: str, dict or `Backbone`. A registered name (`"towers"`,
            ...), a serialized backbone, or an instance with
            `num_tasks == len(tasks)`. Defaults to `"towers"`.
        backbone_config: dict or None. Constructor kwargs of a named backbone
            (e.g. `{"hidden_units": [256, 128]}`).
        embedding_combiner: str. Pooling of multi-valued fields, `"mean"` or
            `"sum"`. Defaults to `"mean"`.
        embedding_layout: str. `"fused"` (every embedding table in one
            variable, one gather per batch) or `"per_table"` (one variable
            per table: the layout of `.keras` files saved before tables
            were fused, which load with it). See `FeatureEmbedding`.
            Defaults to `"fused"`.
        epsilon: float. Probability clip inside logs. Defaults to 1e-7.

    Inputs: the dict produced by `tfcvr.data.make_dataset` (see
    `FeatureEmbedding`). Labels for `fit`: a dict with float `(batch,)`
    `click` and `conversion` (plus any extra label a model needs).

    `compile(..., train_metrics=...)` chooses what `fit` and `evaluate` log
    besides the loss: `"auc"`, approximate (200-threshold) `ctr_auc`,
    `ctcvr_auc` and `cvr_auc_clicked`, or `"none"` (exact ones come from
    `tfcvr.evaluation` either way).
    """

    tasks = (keys.CTR, keys.CVR)

    def __init__(
        self,
        schema,
        embedding_dim=16,
        backbone="towers",
        backbone_config=None,
        embedding_combiner="mean",
        epsilon=F.EPSILON,
        embedding_layout="fused",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(schema, dict):
            schema = Schema.from_dict(schema)
        if not 0.0 < epsilon < 0.5:
            raise ValueError(
                f"epsilon must be in (0, 0.5). Received: epsilon={epsilon}"
            )
        self._check_schema(schema)

        # === Layers ===
        self.embedding = FeatureEmbedding(
            schema,
            embedding_dim=embedding_dim,
            combiner=embedding_combiner,
            table_layout=embedding_layout,
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.backbone = get_backbone(
            backbone,
            num_tasks=len(self.tasks),
            config={"dtype": self.dtype_policy, **(backbone_config or {})}
            if isinstance(backbone, str)
            else backbone_config,
        )
        # Heads in float32 so mixed precision never rounds probabilities.
        self.heads = [
            keras.layers.Dense(1, dtype="float32", name=f"{task}_logit")
            for task in self.tasks
        ]

        # === Config ===
        self.schema = schema
        self.embedding_dim = embedding_dim
        self._backbone_arg = (
            backbone if isinstance(backbone, str) else None
        )
        self.backbone_config = dict(backbone_config or {})
        self.embedding_combiner = embedding_combiner
        self.epsilon = epsilon
        self.embedding_layout = embedding_layout

        # === Metrics (approximate AUCs, logged when compiled with
        # train_metrics="auc") ===
        self.ctr_auc = keras.metrics.AUC(name="ctr_auc")
        self.ctcvr_auc = keras.metrics.AUC(name="ctcvr_auc")
        self.cvr_auc_clicked = keras.metrics.AUC(name="cvr_auc_clicked")
        self.train_metrics = DEFAULT_TRAIN_METRICS
        # Created by `build`, once the names of the loss terms are known.
        self.loss_monitor = None

    def _check_schema(self, schema):
        """Hook for estimators that need extra labels (e.g. ESM2)."""

    # === Forward ===

    def task_logits(self, features, training=False):
        """Dict task name -> `(batch, 1)` float32 logit."""
        x = self.embedding(features)
        reps = self.backbone(x, training=training)
        return {
            task: head(ops.cast(rep, "float32"))
            for task, head, rep in zip(self.tasks, self.heads, reps)
        }

    def outputs_from_logits(self, logits, features=None, training=False):
        outputs = {task: ops.sigmoid(logit) for task, logit in logits.items()}
        outputs[keys.CTCVR] = outputs[keys.CTR] * outputs[keys.CVR]
        return outputs

    def call(self, features, training=False):
        logits = self.task_logits(features, training=training)
        return self.outputs_from_logits(logits, features, training=training)

    # === Objective ===

    def loss_terms(self, labels, outputs):
        """Dict of named scalar loss terms; their sum is the objective."""
        raise TypeError(f"{type(self).__name__} defines no loss_terms().")

    def bce(self, y_true, y_prob):
        return F.binary_crossentropy(
            F.flat(y_true), F.flat(y_prob), self.epsilon
        )

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if not isinstance(y, dict) or keys.CLICK not in y:
            raise ValueError(
                f"{type(self).__name__} trains on a dict of labels with "
                f"`{keys.CLICK}` and `{keys.CONVERSION}`. Received: "
                f"{type(y).__name__}"
            )
        return self.total_loss(
            self.objective_terms(y, y_pred), labels=y if training else None
        )

    def objective_terms(self, labels, outputs):
        """`loss_terms`, with the click propensity of every
        propensity-weighted term taken from `labels[keys.PROPENSITY]` when
        the trainer added that label (a separate CTR model or a logged
        propensity; see `tfcvr.losses.functional.given_click_propensity`),
        else the model's own pCTR."""
        if keys.PROPENSITY not in labels:
            return self.loss_terms(labels, outputs)
        with F.given_click_propensity(
            labels[keys.CLICK], labels[keys.PROPENSITY]
        ):
            return self.loss_terms(labels, outputs)

    def total_loss(self, terms, labels=None):
        """This replica's objective: the sum of the loss terms (each already
        this replica's share of the global batch's term) and of the
        regularisation losses (shared out as `weight_penalty`), so that the
        gradients Keras sums over the replicas are the gradient of the
        global batch's objective. Updates `loss_monitor` with the terms
        (and with the label totals of a training batch, `labels`).

        Keras logs `replicas * value` of each replica, weighted by the
        replica's rows (`keras/src/backend/tensorflow/trainer.py`,
        `unscale_loss_for_distribution`); the value returned is therefore
        the global objective over `replicas` (its gradient is this
        replica's), so the logged `loss` is the global batch's, even when a
        batch does not split evenly.
        """
        total = ops.sum(
            ops.stack([ops.cast(t, "float32") for t in terms.values()])
        )
        if self.losses:
            # A list through ops.sum fails under JAX tracing; stack first.
            total = total + F.weight_penalty(ops.sum(
                ops.stack([ops.cast(loss, "float32") for loss in self.losses])
            ))
        if self.loss_monitor is not None and _can_update_state():
            self.loss_monitor.update_state(terms, labels)
        replicas = F.num_replicas()
        if replicas == 1:
            return total
        logged = F.cross_replica_sum(ops.stop_gradient(total)) / replicas
        return total + ops.stop_gradient(logged - total)

    # === Training-time metrics ===

    def compile(self, *args, train_metrics=DEFAULT_TRAIN_METRICS, **kwargs):
        """`keras.Model.compile` plus `train_metrics` (`"auc"` or
        `"none"`, see the class docstring); `metrics` must stay None since
        the model computes its own. Saved with the compile config."""
        if train_metrics not in TRAIN_METRICS:
            raise ValueError(
                f"train_metrics must be one of {list(TRAIN_METRICS)}. "
                f"Received: train_metrics={train_metrics!r}"
            )
        metrics = args[3] if len(args) > 3 else kwargs.get("metrics")
        if metrics is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own metrics; choose "
                f"them with train_metrics={list(TRAIN_METRICS)}. Received: "
                f"metrics={metrics!r}"
            )
        super().compile(*args, **kwargs)
        self._compile_config.config["train_metrics"] = train_metrics
        self.train_metrics = train_metrics

    def fit(self, *args, **kwargs):
        # Without a strategy, Keras on TensorFlow creates the optimizer's
        # slots inside the first traced step, and a tf.function that
        # creates variables is traced twice: building them here first
        # halves the time to the first step (a strategy builds them itself).
        if (keras.backend.backend() == "tensorflow"
                and getattr(self, "_distribute_strategy", None) is None
                and getattr(self, "optimizer", None) is not None
                and not self.optimizer.built):
            self.build()
            self.optimizer.build(self.trainable_variables)
        return super().fit(*args, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a model whose compile() is overridden.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        metrics = super().metrics
        if getattr(self, "train_metrics", None) == "none":
            aucs = [getattr(self, name, None) for name in AUC_METRICS]
            metrics = [m for m in metrics if all(m is not a for a in aucs)]
        return metrics

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self.train_metrics == "auc":
            click = F.flat(y[keys.CLICK])
            conversion = F.flat(y[keys.CONVERSION])
            self.ctr_auc.update_state(click, F.flat(y_pred[keys.CTR]))
            self.ctcvr_auc.update_state(
                click * conversion, F.flat(y_pred[keys.CTCVR])
            )
            self.cvr_auc_clicked.update_state(
                conversion, F.flat(y_pred[keys.CVR]), sample_weight=click
            )
        return self.get_metrics_result()

    # === Building and serialization ===

    def dummy_inputs(self, batch_size=1):
        """Zero inputs of the right structure, for building and tracing."""
        inputs = {}
        for spec in self.schema.features:
            if spec.is_multi_valued:
                inputs[spec.name] = np.zeros((batch_size, spec.max_len), "int32")
                if spec.weighted:
                    inputs[spec.name + keys.WEIGHT_SUFFIX] = np.zeros(
                        (batch_size, spec.max_len), "float32"
                    )
            elif spec.is_categorical:
                inputs[spec.name] = np.zeros((batch_size,), "int32")
            else:
                inputs[spec.name] = np.zeros((batch_size,), "float32")
        return inputs

    def build(self, input_shape=None):
        # Every shape follows from the schema, so building never waits for
        # data (needed by `.keras` loading and distribution strategies).
        if self.built:
            return
        outputs = self.call(self.dummy_inputs(), training=False)
        self.built = True
        if type(self).loss_terms is not CVRModel.loss_terms:
            # The stored extra columns too: a loss may read one (the oracle
            # propensity reads `true_ctr`).
            labels = {
                name: np.zeros((1,), "float32")
                for name in (*self.schema.labels, *self.schema.extra_columns)
            }
            self.loss_monitor = LossMonitor(
                list(self.loss_terms(labels, outputs)), name="loss_terms"
            )

    def get_build_config(self):
        return {"schema_driven": True}

    def build_from_config(self, config):
        self.build()

    def get_config(self):
        """The base arguments plus every argument of each subclass's
        `__init__`, read from the attribute of the same name (the style's
        rule: one attribute per constructor argument)."""
        if self._backbone_arg is not None:
            backbone = self._backbone_arg
        else:
            backbone = keras.saving.serialize_keras_object(self.backbone)
            # The build state is not a constructor argument.
            backbone.pop("build_config", None)
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "schema": self.schema.to_dict(),
            "embedding_dim": self.embedding_dim,
            "backbone": backbone,
            "backbone_config": self.backbone_config,
            "embedding_combiner": self.embedding_combiner,
            "epsilon": self.epsilon,
            "embedding_layout": self.embedding_layout,
        }
        config.update(subclass_config(self, CVRModel, exclude=config))
        return config

    @classmethod
    def from_config(cls, config):
        # Saved before embedding tables were fused: the weights are per
        # table, so the model keeps that layout.
        config = {"embedding_layout": "per_table", **config}
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
