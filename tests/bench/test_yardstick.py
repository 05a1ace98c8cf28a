import keras
import numpy as np

from tfcvr.bench import yardstick
from tfcvr.features import keys
from tfcvr.testing import TestCase

DIMS = [5, 3, 4]
NAMES = ["a", "b", "c"]


class YardstickTest(TestCase):
    def features(self, rows=6):
        rng = np.random.default_rng(0)
        features = {n: rng.integers(0, d, rows).astype("int32")
                    for n, d in zip(NAMES, DIMS)}
        labels = {keys.CLICK: (rng.random(rows) < 0.5).astype("float32"),
                  keys.CONVERSION: (rng.random(rows) < 0.5).astype("float32")}
        return features, labels

    def test_one_table_read_at_per_field_offsets(self):
        model = yardstick.yardstick_esmm(DIMS, NAMES, embedding_dim=2,
                                         hidden_units=[4])
        table = model.get_layer("table")
        rows = np.arange(sum(DIMS) * 2, dtype="float32").reshape(-1, 2)
        table.embeddings.assign(rows)
        features, labels = self.features()
        x, y = yardstick.yardstick_arrays(features, labels, NAMES)
        embedded = keras.Model(model.inputs, table.output)(x)
        offsets = np.array([0, 5, 8])
        self.assertAllClose(embedded, rows[x + offsets])
        self.assertAllClose(y[keys.CTCVR],
                            labels[keys.CLICK] * labels[keys.CONVERSION])

    def test_dict_inputs_compute_the_same_model(self):
        features, labels = self.features()
        matrix = yardstick.yardstick_esmm(DIMS, NAMES, hidden_units=[4])
        per_field = yardstick.yardstick_esmm(DIMS, NAMES, hidden_units=[4],
                                             inputs="dict")
        per_field.set_weights(matrix.get_weights())
        a = matrix(yardstick.yardstick_arrays(features, labels, NAMES)[0])
        b = per_field(yardstick.yardstick_arrays(features, labels, NAMES,
                                                 inputs="dict")[0])
        for key in (keys.CTR, keys.CTCVR):
            self.assertAllClose(a[key], b[key])
        with self.assertRaisesRegex(ValueError, "Received: inputs='list'"):
            yardstick.yardstick_esmm(DIMS, inputs="list")
