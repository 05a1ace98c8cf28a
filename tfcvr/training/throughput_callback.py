import time

import keras


class ThroughputCallback(keras.callbacks.Callback):
    """Measures steady-state training examples per second.

    Batch end times are recorded; the first `min(warmup_batches, n // 2)`
    of the `n` callback calls (tracing, compilation, cache fill) are left
    out, so short runs still get a figure. The process's CPU time is
    recorded too: examples per CPU-second is the work a step costs, which
    other processes on the machine disturb less than wall time.

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
        self.cpu_times = []

    def on_train_begin(self, logs=None):
        self.times = []
        self.cpu_times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())
        self.cpu_times.append(time.process_time())

    def _rate(self, times):
        skip = min(self.warmup_batches, len(times) // 2)
        timed = len(times) - 1 - skip
        if timed < 1:
            return float("nan")
        return timed * self.batch_size / (times[-1] - times[skip])

    @property
    def examples_per_second(self):
        return self._rate(self.times)

    @property
    def examples_per_cpu_second(self):
        return self._rate(self.cpu_times)
