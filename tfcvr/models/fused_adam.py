import keras
from keras import ops

from tfcvr.serialization import register_serializable

# Keras names the table of `keras.layers.Embedding` and of tfcvr's fused
# `FeatureEmbedding` alike.
TABLE_NAMES = ("embeddings",)
# Below this many row reads per step TensorFlow's own kernels cost little,
# and the update skips XLA (and its compiles: tests, small batches).
XLA_MIN_READS = 4096


@register_serializable
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam in one fused kernel per variable, or lazy on embedding
    tables (`lazy_tables=True`).

    Adam, with g the gradient and t the step: `m <- b1 m + (1 - b1) g`,
    `v <- b2 v + (1 - b2) g^2`,
    `w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`.

    On TensorFlow every variable is updated by the fused `ResourceApplyAdam`
    kernel (tf.keras' own) instead of Keras 3's dozen elementwise ops over
    the whole variable: for 240k table rows x 16 those ops are ~40% of an
    ESMM step on 2 CPU cores (keras-team/keras#19992). The numbers stay
    Keras 3's: its Adam on TensorFlow lets each read of a table row in a
    batch enter `v` as its own square (`sum_i g_i^2`; tf.keras, PyTorch and
    Keras on JAX use `(sum_i g_i)^2`), and so does this one unless
    `square_reads_apart=False`. Other backends run Keras' Adam (XLA fuses
    it).

    `lazy_tables=True` is the lazy Adam of sparse-feature training (TF 1's
    `LazyAdamOptimizer`, PyTorch's `SparseAdam`): a table row the batch does
    not read keeps `w`, `m` and `v` as they were, so only the rows read
    are touched. On TensorFlow those are the indices of the sparse
    gradient; where a table's gradient arrives dense (JAX; an L2 over the
    whole table) a row counts as read when its gradient is not all zeros.
    The rows read take their reads as below, then only they are updated.

    A table's sparse gradient (`tf.IndexedSlices`, one row per read) never
    becomes a dense gradient: its reads are added ahead into `m` and `v`,
    scaled so that the kernel's decay lands on Keras' values
    (`m += (1 - b1) / b1 g_i`, `v += (1 - b2) / b2 g_i^2`, in place), and
    the kernel then runs on a zero gradient: every row decays as Keras'
    does and the rows read take their reads. Positive terms only, so no
    digits cancel (exact to float32 rounding). With `xla_scatter` (default)
    one XLA-compiled in-place scatter adds the reads when a step reads at
    least `XLA_MIN_READS` (4096) rows; TensorFlow's scatter kernel costs a
    fixed amount per read, about 3x XLA's. On a 240k x 16 table and 65k
    Zipf-like reads the table update takes 11-15 ms against 32-40 ms when
    the reads were scattered into two dense tables first (2 CPU cores).
    `beta_1` or `beta_2` of 0, and `square_reads_apart=False` (which needs
    each row's summed reads), take the dense way: a scatter (XLA's, or
    TensorFlow's kernels) makes the gradient dense, a table's `v` is set
    first and the kernel, run with `beta2=1`, keeps it; lazily, the reads
    are summed per row.

    `weight_decay` is Keras' decoupled weight decay (as `AdamW`), applied
    to every row of every variable each step.

    Args:
        learning_rate: float or schedule. Defaults to 1e-3.
        beta_1, beta_2, epsilon: Adam's. Default to Keras' (0.9, 0.999,
            1e-7).
        weight_decay: float or None. Decoupled weight decay.
        lazy_tables: bool. Update only the table rows a batch reads.
            Defaults to False.
        square_reads_apart: bool. On TensorFlow, a row read several times
            in a batch adds the sum of its reads' squared gradients to `v`,
            as Keras 3's Adam does (default); False: the square of their
            sum. Lazy or not.
        xla_scatter: bool. On TensorFlow, a sparse table gradient is made
            dense by an XLA-compiled scatter (default); False: by
            TensorFlow's kernels (the same numbers, slower; for builds
            without XLA).
        table_names: tuple of str. Names of the table variables. Defaults
            to `("embeddings",)`: the tables of `keras.layers.Embedding`
            and of tfcvr's `FeatureEmbedding`.
        **kwargs: the other `keras.optimizers.Optimizer` arguments
            (`clipnorm`, `name`, ...).

    Shapes: a table is `(rows, dim)`.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, weight_decay=None, lazy_tables=False,
                 square_reads_apart=True, xla_scatter=True,
                 table_names=TABLE_NAMES, name="fused_adam", **kwargs):
        if kwargs.pop("amsgrad", False):
            raise ValueError("FusedAdam has no AMSGrad variant. Received: amsgrad=True")
        for flag, value in (("lazy_tables", lazy_tables),
                            ("square_reads_apart", square_reads_apart),
                            ("xla_scatter", xla_scatter)):
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be a bool. Received: {flag}={value!r}")
        if isinstance(table_names, str) or not all(
            isinstance(n, str) and n for n in table_names
        ):
            raise ValueError(
                "table_names must be a list of variable names. Received: "
                f"table_names={table_names!r}"
            )
        super().__init__(learning_rate=learning_rate, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon,
                         weight_decay=weight_decay, name=name, **kwargs)
        self.lazy_tables = lazy_tables
        self.square_reads_apart = square_reads_apart
        self.xla_scatter = xla_scatter
        self.table_names = tuple(table_names)

    def build(self, var_list):
        super().build(var_list)
        # By index: TensorFlow hands `update_step` the tf.Variable (under
        # MirroredStrategy one per device, `embeddings/replica_1:0`).
        self._table_indices = {
            self._get_variable_index(v) for v in var_list
            if v.name in self.table_names and len(v.shape) == 2
        }

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lazy = self.lazy_tables and index in self._table_indices
        on_tf = keras.backend.backend() == "tensorflow"
        if not (on_tf or lazy):
            return super().update_step(gradient, variable, learning_rate)
        m, v = self._momentums[index], self._velocities[index]
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        powers = (ops.power(ops.cast(self.beta_1, dtype), step),
                  ops.power(ops.cast(self.beta_2, dtype), step))
        if on_tf:
            import tensorflow as tf

            sparse = isinstance(gradient, tf.IndexedSlices)
            if lazy and sparse:
                return self._update_read_rows(gradient, variable, m, v,
                                              learning_rate, powers)
            if not lazy:
                beta_2 = self.beta_2
                if sparse and self._adds_reads_ahead():
                    self._add_reads_ahead(gradient, variable, m, v)
                    gradient = _zeros_like(variable)
                elif sparse:
                    gradient, v_done = self._summed_rows(gradient, variable, v)
                    if v_done:
                        # `v` holds its new value: the kernel keeps it.
                        beta_2 = 1.0
                return self._fused_update(gradient, variable, m, v,
                                          learning_rate, powers, beta_2)
        self._update_nonzero_rows(gradient, variable, m, v, learning_rate,
                                  powers)

    def _alpha(self, learning_rate, powers, dtype):
        return (ops.cast(learning_rate, dtype) * ops.sqrt(1 - powers[1])
                / (1 - powers[0]))

    def _adds_reads_ahead(self):
        return (self.square_reads_apart and self.beta_1 > 0
                and self.beta_2 > 0)

    def _add_reads_ahead(self, gradient, variable, m, v):
        """`m += (1 - b1) / b1 g_i` and `v += (1 - b2) / b2 g_i^2` over the
        reads, in place: the kernel's `m <- b1 m`, `v <- b2 v` on a zero
        gradient then gives Keras' `b1 m + (1 - b1) sum_i g_i` and
        `b2 v + (1 - b2) sum_i g_i^2`."""
        import tensorflow as tf

        reads = (tf.cast(gradient.indices, "int32"),
                 tf.cast(gradient.values, variable.dtype),
                 (1 - self.beta_1) / self.beta_1,
                 (1 - self.beta_2) / self.beta_2)
        # `.value` is the tf.Variable, updated in place.
        slots = (m.value, v.value)
        if self.xla_scatter:
            tf.cond(tf.size(reads[0]) >= XLA_MIN_READS,
                    lambda: _padded_xla_add_ahead(*slots, *reads),
                    lambda: _kernel_add_ahead(*slots, *reads))
        else:
            _kernel_add_ahead(*slots, *reads)

    def _summed_rows(self, gradient, variable, v):
        """`(dense, v_done)`: the dense gradient of a sparse one; with
        `square_reads_apart`, `v` is first set to Keras'
        `b2 v + (1 - b2) sum_i g_i^2` (`v_done`), which the kernel then
        keeps with `beta2=1` (its bias correction reads `beta2_power`
        alone): exact, where adding the difference to the kernel's
        `(sum_i g_i)^2` would cancel digits on a row read hundreds of
        times."""
        import tensorflow as tf

        reads = (tf.cast(gradient.indices, "int32"),
                 tf.cast(gradient.values, variable.dtype),
                 tf.shape(variable), self.square_reads_apart)
        if self.xla_scatter:
            scatter = tf.cond(tf.size(reads[0]) >= XLA_MIN_READS,
                              lambda: _padded_xla_scatter(*reads),
                              lambda: _kernel_scatter(*reads))
        else:
            scatter = _kernel_scatter(*reads)
        if not self.square_reads_apart:
            return scatter, False
        dense, squares = scatter
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * squares)
        return dense, True

    def _fused_update(self, gradient, variable, m, v, learning_rate, powers,
                      beta_2):
        import tensorflow as tf

        dtype = variable.dtype
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=powers[0], beta2_power=powers[1],
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))

    def _update_read_rows(self, gradient, variable, m, v, learning_rate,
                          powers):
        """TensorFlow, lazy: gathers, updates and scatters back the rows
        read (their reads added ahead into `m` and `v` as the dense update
        does, or with `square_reads_apart=False` summed per row)."""
        import tensorflow as tf

        # `.value` is the tf.Variable: a row gather, not a read of the table
        # (which would make the scatters below copy it).
        if self._adds_reads_ahead():
            rows = tf.unique(tf.cast(gradient.indices, "int32"))[0]
            self._add_reads_ahead(gradient, variable, m, v)
            m_rows = self.beta_1 * tf.gather(m.value, rows)
            v_rows = self.beta_2 * tf.gather(v.value, rows)
        else:
            rows, position = tf.unique(gradient.indices)
            values = tf.cast(gradient.values, variable.dtype)
            count = tf.shape(rows)[0]
            g = tf.math.unsorted_segment_sum(values, position, count)
            m_rows = (self.beta_1 * tf.gather(m.value, rows)
                      + (1 - self.beta_1) * g)
            squares = (tf.math.unsorted_segment_sum(tf.square(values),
                                                    position, count)
                       if self.square_reads_apart else tf.square(g))
            v_rows = (self.beta_2 * tf.gather(v.value, rows)
                      + (1 - self.beta_2) * squares)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        alpha = self._alpha(learning_rate, powers, variable.dtype)
        self.assign_sub(variable, tf.IndexedSlices(
            alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))

    def _update_nonzero_rows(self, gradient, variable, m, v, learning_rate,
                             powers):
        """Lazy on a dense gradient: the rows read are the nonzero ones."""
        gradient = ops.cast(gradient, variable.dtype)
        read = ops.any(ops.not_equal(gradient, 0), axis=-1, keepdims=True)
        old_m, old_v = ops.convert_to_tensor(m), ops.convert_to_tensor(v)
        new_m = self.beta_1 * old_m + (1 - self.beta_1) * gradient
        new_v = self.beta_2 * old_v + (1 - self.beta_2) * ops.square(gradient)
        self.assign(m, ops.where(read, new_m, old_m))
        self.assign(v, ops.where(read, new_v, old_v))
        alpha = self._alpha(learning_rate, powers, variable.dtype)
        self.assign_sub(variable, ops.where(
            read, alpha * new_m / (ops.sqrt(new_v) + self.epsilon), 0.0))

    def get_config(self):
        config = super().get_config()
        config.pop("amsgrad", None)
        config.update(lazy_tables=self.lazy_tables,
                      square_reads_apart=self.square_reads_apart,
                      xla_scatter=self.xla_scatter,
                      table_names=list(self.table_names))
        return config


def _kernel_scatter(indices, values, shape, with_squares):
    """Each row's reads summed, `(rows, dim)`; with `with_squares` also
    their squares summed, by TensorFlow's kernels."""
    import tensorflow as tf

    if not with_squares:
        return tf.math.unsorted_segment_sum(values, indices, shape[0])
    rows, position = tf.unique(indices)
    count = tf.shape(rows)[0]
    summed = tf.math.unsorted_segment_sum(values, position, count)
    squares = tf.math.unsorted_segment_sum(tf.square(values), position, count)
    # The rows are unique: placed, not summed a second time.
    return (tf.scatter_nd(rows[:, None], summed, shape),
            tf.scatter_nd(rows[:, None], squares, shape))


def _padded(indices, values):
    """The reads padded with zero gradients on row 0 to one of 8 sizes per
    power of two (a multiple of 2^floor(log2 count) / 8, at most 1/8 more
    reads), so that a step whose read count changes (multi-valued fields,
    the last batch) compiles one of a few shapes, not one per count."""
    import tensorflow as tf

    count = tf.maximum(tf.size(indices), 1)
    # 2^floor(log2 count), halved or doubled if off: exact despite the
    # float log.
    power = 2 ** tf.cast(tf.math.floor(tf.math.log(tf.cast(count, "float32"))
                                       / tf.math.log(2.0)), "int32")
    power = tf.where(power > count, power // 2, power)
    power = tf.where(2 * power <= count, 2 * power, power)
    step = tf.maximum(power // 8, 1)
    size = (count + step - 1) // step * step
    padding = [[0, size - tf.size(indices)]]
    return tf.pad(indices, padding), tf.pad(values, padding + [[0, 0]])


def _padded_xla_scatter(indices, values, shape, with_squares):
    """`_kernel_scatter` by one XLA-compiled scatter of the `_padded`
    reads."""
    return _xla_scatter(with_squares)(*_padded(indices, values), shape)


def _kernel_add_ahead(m, v, indices, values, m_scale, v_scale):
    """`FusedAdam._add_reads_ahead` by TensorFlow's scatter kernel."""
    import tensorflow as tf

    m.scatter_add(tf.IndexedSlices(values * m_scale, indices))
    v.scatter_add(tf.IndexedSlices(tf.square(values) * v_scale, indices))


def _padded_xla_add_ahead(m, v, indices, values, m_scale, v_scale):
    """`_kernel_add_ahead` in one XLA-compiled in-place scatter of the
    `_padded` reads (zero on row 0 adds nothing)."""
    global _XLA_ADD_AHEAD
    if _XLA_ADD_AHEAD is None:
        import tensorflow as tf

        _XLA_ADD_AHEAD = tf.function(_kernel_add_ahead, jit_compile=True,
                                     reduce_retracing=True)
    _XLA_ADD_AHEAD(m, v, *_padded(indices, values), m_scale, v_scale)


_XLA_ADD_AHEAD = None
_ZEROS = {}


def _zeros_like(variable):
    """A zero tensor of the variable's shape, made once per shape, dtype
    and device: filling 15 MB every step costs as much as the kernel."""
    import tensorflow as tf

    key = (tuple(variable.shape), variable.dtype, variable.device)
    if key not in _ZEROS:
        with tf.init_scope(), tf.device(variable.device):
            _ZEROS[key] = tf.zeros(variable.shape, variable.dtype)
    return _ZEROS[key]


_XLA_SCATTERS = {}


def _xla_scatter(with_squares):
    """`_kernel_scatter(indices, values, shape, with_squares)`,
    XLA-compiled once per process."""
    if with_squares not in _XLA_SCATTERS:
        import tensorflow as tf

        def scatter(indices, values, shape):
            dense = tf.scatter_nd(indices[:, None], values, shape)
            if not with_squares:
                return dense
            return dense, tf.scatter_nd(indices[:, None], tf.square(values),
                                        shape)

        _XLA_SCATTERS[with_squares] = tf.function(
            scatter, jit_compile=True, reduce_retracing=True)
    return _XLA_SCATTERS[with_squares]
