import keras
from keras import ops

from tfcvr.features import keys
from tfcvr.losses import functional as F

# Suffix of a loss term's name in the training logs (`ctr` -> `ctr_loss`).
TERM_SUFFIX = "_loss"
# Order of the label totals.
LABEL_TOTALS = ("rows", keys.CLICK, keys.CONVERSION)


class LossMonitor(keras.metrics.Metric):
    """The named terms of an estimator's objective over the batches of an
    epoch, and the rows, clicks and conversions of its training batches.

    Its result is `{"<term>_loss": mean of the term over the batches}`, so
    the training logs show each term of `loss_terms` (what a non-finite loss
    check names). Under a multi-replica strategy each replica adds its share
    of a term and `1/replicas` of a batch, so the means are those of the
    global batches. Label totals count training batches only and survive
    `reset_state` (Keras resets metrics before each evaluation):
    `reset_label_totals` starts a count, `label_totals()` reads it.

    Args:
        term_names: sequence of str. The keys of the estimator's
            `loss_terms`.
        name: str. Defaults to `"loss_terms"`.
    """

    def __init__(self, term_names, name="loss_terms", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.term_names = tuple(term_names)
        size = max(len(self.term_names), 1)
        self.sums = self.add_variable(
            shape=(size,), initializer="zeros", name="sums"
        )
        self.counts = self.add_variable(
            shape=(size,), initializer="zeros", name="counts"
        )
        self.totals = self.add_variable(
            shape=(len(LABEL_TOTALS),), initializer="zeros", name="totals"
        )

    def update_state(self, terms, labels=None):
        """Adds one batch: `terms` (a dict, possibly a subset of
        `term_names`, e.g. one phase of alternating training) and, for a
        training batch, its `labels` dict."""
        if self.term_names:
            zero = ops.zeros((), "float32")
            values = [
                ops.cast(terms[n], "float32") if n in terms else zero
                for n in self.term_names
            ]
            present = [float(n in terms) for n in self.term_names]
            share = 1.0 / F.num_replicas()
            self.sums.assign_add(ops.stack(values))
            self.counts.assign_add(
                ops.convert_to_tensor(present, "float32") * share
            )
        if labels is not None:
            click = F.flat(labels[keys.CLICK])
            conversion = click * F.flat(labels[keys.CONVERSION])
            rows = ops.cast(ops.shape(click)[0], "float32")
            self.totals.assign_add(
                ops.stack([rows, ops.sum(click), ops.sum(conversion)])
            )

    def result(self):
        means = ops.divide_no_nan(self.sums, self.counts)
        return {
            name + TERM_SUFFIX: means[i]
            for i, name in enumerate(self.term_names)
        }

    def reset_state(self):
        # ops.zeros_like of a Variable fails on the JAX backend.
        self.sums.assign(ops.zeros(self.sums.shape))
        self.counts.assign(ops.zeros(self.counts.shape))

    def reset_label_totals(self):
        self.totals.assign(ops.zeros(self.totals.shape))

    def label_totals(self):
        """`{"rows": n, "click": n, "conversion": n}` since the last
        `reset_label_totals`, over every replica."""
        values = ops.convert_to_numpy(self.totals)
        return {name: float(v) for name, v in zip(LABEL_TOTALS, values)}

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "term_names": list(self.term_names),
        }
