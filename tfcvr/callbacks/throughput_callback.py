import time

import keras


class ThroughputCallback(keras.callbacks.Callback):
    """Measures steady-state training examples per second.

    The first `warmup_batches` batches (tracing, compilation, cache fill)
    are excluded; `examples_per_second` covers the rest of training.

    Args:
        batch_size: int. Examples per batch.
        warmup_batches: int. Callback calls skipped before timing. Defaults
            to 20.
        steps_per_execution: int. Batches per callback call (Keras calls
            batch callbacks once per execution). Defaults to 1.
    """

    def __init__(self, batch_size, warmup_batches=20, steps_per_execution=1):
        super().__init__()
        self.batch_size = batch_size * steps_per_execution
        self.warmup_batches = warmup_batches
        self._seen = 0
        self._start = None
        self._timed = 0
        self._end = None

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._seen == self.warmup_batches:
            self._start = time.perf_counter()
        elif self._seen > self.warmup_batches:
            self._timed += 1
            self._end = time.perf_counter()

    @property
    def examples_per_second(self):
        if not self._timed or self._end is None:
            return float("nan")
        return self._timed * self.batch_size / (self._end - self._start)
