import keras
import tensorflow as tf

from tfcvr.data.dataset_dir import RAW
from tfcvr.features import keys

# Batches of parsed records shuffled per epoch when the split is cached.
_CACHED_SHUFFLE_BATCHES = 64
# Mixes the run's seed with the epoch into the seed of that epoch's order.
_EPOCH_SEED_STRIDE = 1_000_003


class EpochData:
    """The training split as `fit` input whose order in epoch `e` depends on
    the seed and `e` only, so a run resumed from a checkpoint sees the same
    batches as an uninterrupted one.

    Each epoch is a fresh pass over the split, shuffled with the seed
    `seed * 1000003 + e` (files, then records in a buffer of 16 global
    batches; with `cache`, parsed batches are kept after the first pass and
    only their order changes); `callback()` tells the input pipeline which
    epoch Keras starts, and `start_at(epoch, steps)` skips the steps of an
    epoch already trained. Under a multi-replica strategy the batches are
    made per replica (`distribute_datasets_from_function`): each replica
    takes `per_replica_batch_size` consecutive rows of the same stream, so a
    global batch holds the rows a one-replica run would put in it, and each
    worker of a multi-worker run reads its own share of the files (every
    worker reads every file and keeps its share of the batches when there
    are fewer files than workers).

    Args:
        data: `tfcvr.data.DatasetDir`.
        layout: `tfcvr.training.ReplicaLayout`.
        seed: int. The run's seed.
        cache: bool. Keep parsed batches in memory after the first epoch.
        drop_remainder: bool. Drop the last partial batch of each epoch.
        include_extra: bool. Keep the stored non-feature columns.
        batch_map: callable or None. Applied to every `(features, labels)`
            batch (e.g. `PropensitySource.batch_map`).
    """

    def __init__(self, data, layout, seed=0, cache=False,
                 drop_remainder=False, include_extra=False, batch_map=None):
        self.data = data
        self.include_extra = include_extra
        self.batch_map = batch_map
        self.layout = layout
        self.seed = seed
        self.cache = cache
        self.drop_remainder = drop_remainder
        # The encoded shards when the directory has valid ones (see
        # `DatasetDir`), else the raw TFRecords; workers share them by file.
        self.input_format = data.format_of(keys.TRAIN_SPLIT)
        self.files = data.input_files(keys.TRAIN_SPLIT)
        if self.input_format == RAW:
            # Built here, eagerly: built first inside the pipeline's
            # function, its tables would belong to that graph.
            data.transform
        # Host variables read by the pipeline when a pass starts.
        with tf.init_scope():
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._skip = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.start_epoch = 0
        self.start_step = 0

    def start_at(self, epoch, steps):
        """Start at epoch `epoch`, its first `steps` steps already trained."""
        self.start_epoch = epoch
        self.start_step = steps

    def callback(self):
        return _EpochClock(self)

    def dataset(self):
        """The `fit` input: a `tf.data.Dataset`, or a distributed dataset
        under a multi-replica strategy."""
        if not self.layout.distributed:
            return self._pipeline(self.files, self.layout.batch_size, 1, None)
        strategy = self.layout.strategy

        def per_worker(context):
            batch = context.get_per_replica_batch_size(self.layout.batch_size)
            pipelines = context.num_input_pipelines
            index = context.input_pipeline_id
            replicas = context.num_replicas_in_sync // pipelines
            if len(self.files) >= pipelines:
                return self._pipeline(self.files[index::pipelines], batch,
                                      replicas, None)
            return self._pipeline(self.files, batch, replicas,
                                  (pipelines, index))

        return strategy.distribute_datasets_from_function(per_worker)

    def _pipeline(self, files, batch_size, replicas, shard):
        """Batches of `batch_size` for `replicas` replicas from `files`,
        keeping batches `shard = (n, i)` (`i` of every `n`) when given."""
        buffer = 16 * self.layout.batch_size
        cached = None
        if self.cache:
            cached = self.data.dataset(
                keys.TRAIN_SPLIT, batch_size, files=files, training=False,
                cache=True, drop_remainder=self.drop_remainder,
                include_extra=self.include_extra,
            )

        def one_epoch(_):
            # TF's `get_seed` compares (global seed, op seed) with (0, 0) in
            # Python, which fails for a tensor op seed when the global seed
            # is 0 (`--seed 0`); the epoch's seed says everything, so this
            # function's graph has no global seed.
            tf.compat.v1.get_default_graph().seed = None
            seed = (
                tf.constant(self.seed, tf.int64) * _EPOCH_SEED_STRIDE
                + self._epoch.read_value()
            )
            if cached is not None:
                ds = cached.shuffle(_CACHED_SHUFFLE_BATCHES, seed=seed)
            else:
                ds = self.data.dataset(
                    keys.TRAIN_SPLIT, batch_size, files=files, training=True,
                    shuffle_buffer=buffer, seed=seed,
                    drop_remainder=self.drop_remainder,
                    include_extra=self.include_extra,
                )
            if shard is not None:
                ds = ds.shard(*shard)
            # A step takes one batch per replica of this worker.
            ds = ds.skip(self._skip.read_value() * replicas)
            return ds if self.batch_map is None else ds.map(self.batch_map)

        return tf.data.Dataset.from_tensors(0).flat_map(one_epoch).prefetch(
            tf.data.AUTOTUNE
        )


class _EpochClock(keras.callbacks.Callback):
    """Sets the epoch and the steps to skip before Keras starts a pass."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch, logs=None):
        resumed = epoch == self.data.start_epoch
        self.data._epoch.assign(epoch)
        self.data._skip.assign(self.data.start_step if resumed else 0)


def evaluation_input(data, layout, cache=False, split=keys.EVAL_SPLIT,
                     include_extra=False, batch_map=None):
    """A held-out split (the eval split by default) as `fit`'s
    `validation_data`: global batches, or per replica batches under a
    multi-replica strategy (each worker of a multi-worker run keeping its
    share of them); `include_extra` and `batch_map` as for `EpochData`."""

    def batches(batch_size):
        ds = data.dataset(split, batch_size, training=False, cache=cache,
                          include_extra=include_extra)
        return ds if batch_map is None else ds.map(batch_map)

    if not layout.distributed:
        return batches(layout.batch_size)

    def per_worker(context):
        ds = batches(context.get_per_replica_batch_size(layout.batch_size))
        if context.num_input_pipelines > 1:
            ds = ds.shard(context.num_input_pipelines,
                          context.input_pipeline_id)
        return ds

    return layout.strategy.distribute_datasets_from_function(per_worker)
