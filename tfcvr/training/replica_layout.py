import contextlib
import os
import shutil
import tempfile

import keras
import tensorflow as tf


class ReplicaLayout:
    """How a run's global batch lays out over replicas and workers.

    The global batch size is the user's: each step trains on `batch_size`
    rows, `per_replica_batch_size` on each of `replicas` replicas (under
    `keras.distribution.DataParallel` on JAX the batch stays global and the
    backend shards it over `replicas` devices). On a worker other than the
    chief of a `MultiWorkerMirroredStrategy`, `output_dir` gives a temporary
    directory, removed afterwards: every worker takes part in saving
    (the Keras/TF multi-worker convention), only the chief's files remain.

    Args:
        strategy: `tf.distribute.Strategy` (the default strategy on JAX).
        batch_size: int. The global batch size.
        strategy_name: str. The name it was chosen by (`tfcvr train
            --strategy`), for the description.
    """

    def __init__(self, strategy, batch_size, strategy_name="auto"):
        self.strategy = strategy
        self.batch_size = batch_size
        self.strategy_name = strategy_name
        self.data_parallel = keras.distribution.distribution() is not None
        if self.data_parallel:
            self.devices = [str(d) for d in keras.distribution.list_devices()]
            self.replicas = len(self.devices)
        else:
            self.devices = _devices(strategy)
            self.replicas = strategy.num_replicas_in_sync
        resolver = getattr(strategy, "cluster_resolver", None)
        spec = resolver.cluster_spec().as_dict() if resolver else {}
        self.workers = sum(len(tasks) for tasks in spec.values()) or 1
        self.task_type = getattr(resolver, "task_type", None)
        self.task_id = getattr(resolver, "task_id", None)
        self.is_chief = (
            self.task_type in (None, "chief")
            or (self.task_type == "worker" and self.task_id == 0
                and "chief" not in spec)
        )
        if batch_size % self.replicas:
            raise ValueError(
                f"The global batch size must split evenly over the "
                f"{self.replicas} replicas. Received: batch_size={batch_size}"
            )
        self.per_replica_batch_size = batch_size // self.replicas

    @property
    def distributed(self):
        """Whether each replica computes a share of every step (a
        `tf.distribute` strategy with more than one replica)."""
        return not self.data_parallel and self.replicas > 1

    def describe(self):
        """One line: the strategy, its replicas and the batch split."""
        split = (
            f"global batch {self.batch_size} = {self.replicas} x "
            f"{self.per_replica_batch_size} per replica"
        )
        if self.data_parallel:
            return (
                f"Strategy: keras.distribution.DataParallel over "
                f"{self.replicas} device(s) ({', '.join(self.devices)}); "
                f"{split}"
            )
        name = type(self.strategy).__name__
        if name == "_DefaultDistributionStrategy":
            name = "default (no tf.distribute strategy)"
        line = (
            f"Strategy: {name}, {self.replicas} replica(s) on "
            f"{', '.join(self.devices) or 'the default device'}"
        )
        if self.workers > 1:
            role = "the chief" if self.is_chief else "not the chief"
            line += (
                f", {self.workers} workers (this is {self.task_type} "
                f"{self.task_id}, {role})"
            )
        if self.strategy_name == "mirrored" and self.replicas == 1:
            line += (
                " — only one device is visible, so training runs on one "
                "replica, not distributed"
            )
        return f"{line}; {split}"

    @contextlib.contextmanager
    def output_dir(self, directory):
        """`directory` on the chief; elsewhere a temporary directory that is
        removed on exit."""
        if self.is_chief:
            yield directory
            return
        scratch = tempfile.mkdtemp(prefix=f"tfcvr-worker-{self.task_id}-")
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def fit(self, model, *args, **kwargs):
        """`model.fit` under the strategy.

        Keras's TensorFlow trainer reduces the first batch of a distributed
        dataset over the replicas before training (a MEAN, to build the
        model symbolically); a batch that splits unevenly (a split smaller
        than the global batch, an empty last replica) has per-replica
        shapes that differ, and that reduction fails. A model whose
        variables and optimizer are already built needs no symbolic build,
        so the strategy is taken from the scope instead of the model.
        """
        if not model.optimizer.built:
            with self.strategy.scope():
                model.optimizer.build(model.trainable_variables)
        if keras.backend.backend() == "tensorflow":
            model._distribute_strategy = None
        with self.strategy.scope():
            return model.fit(*args, **kwargs)


def _devices(strategy):
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:
        # The default strategy places on the first GPU, else the CPU.
        devices = [
            d.name for d in tf.config.list_logical_devices("GPU")
        ][:1] or [d.name for d in tf.config.list_logical_devices("CPU")][:1]
    return [os.path.basename(d) for d in devices]
