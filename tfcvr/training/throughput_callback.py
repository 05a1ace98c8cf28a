import time

import keras


class ThroughputCallback(keras.callbacks.Callback):
    """Measures steady-state training examples per second.

    Batch end times are recorded; the first `min(warmup_batches, n // 2)`
    of the `n` callback calls (tracing, compilation, cache fill) are left
    out, so short runs still get a figure.

    Args:
        batch_size: int. Examples per batch.
        warmup_batches: int. Callback calls skipped before timing, at most
            half of them. Defaults to 20.
        steps_per_execution: int. Batches per callback call (Keras calls
            batch callbacks once per execution). Defaults to 1.
    """

    def __init__(self, batch_size, warmup_batches=20, steps_per_execution=1):
        super().__init__()
        self.batch_size = batch_size * steps_per_execution
        self.warmup_batches = warmup_batches
        self.times = []

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

    @property
    def examples_per_second(self):
        skip = min(self.warmup_batches, len(self.times) // 2)
        timed = len(self.times) - 1 - skip
        if timed < 1:
            return float("nan")
        elapsed = self.times[-1] - self.times[skip]
        return timed * self.batch_size / elapsed
