import tensorflow as tf


class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`tf.distribute.MultiWorkerMirroredStrategy` (cluster from
    `TF_CONFIG`) that Keras 3's `fit` can train under.

    Keras 3's TensorFlow trainer reduces each step's logs across replicas
    with `strategy.reduce("MEAN", logs, axis=0)` in multi-worker mode, which
    fails for the scalar logs every model returns ("Invalid reduction
    dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388).
    For scalars this strategy reduces over the replicas alone (`axis=None`),
    which is the mean Keras takes under `MirroredStrategy`; everything else
    is the parent's.
    """

    def reduce(self, reduce_op, value, axis):
        if axis is not None and all(
            getattr(v, "shape", None) is not None and v.shape.rank == 0
            for v in self.experimental_local_results(value)
        ):
            axis = None
        return super().reduce(reduce_op, value, axis)
