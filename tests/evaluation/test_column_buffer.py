import numpy as np
import pytest

from tfcvr.evaluation._column_buffer import ColumnBuffer


def test_append_across_chunks_and_read_back():
    buffer = ColumnBuffer({"a": np.float32, "b": np.uint8}, chunk_rows=4)
    rng = np.random.default_rng(0)
    a = rng.random(23)
    b = rng.integers(0, 2, 23)
    for part in np.split(np.arange(23), [3, 4, 11, 11, 20]):
        buffer.append(a=a[part], b=b[part])
    assert len(buffer) == 23
    np.testing.assert_array_equal(buffer.column("a"), a.astype(np.float32))
    np.testing.assert_array_equal(buffer.column("b"), b)
    buffer.append(a=[0.5], b=[1])  # appending after a read keeps every row
    assert buffer.column("a")[-1] == 0.5 and len(buffer.column("b")) == 24
    buffer.clear()
    assert len(buffer) == 0 and buffer.column("a").shape == (0,)


def test_bad_appends():
    buffer = ColumnBuffer({"a": np.float32, "b": np.uint8})
    with pytest.raises(ValueError, match="Expected columns"):
        buffer.append(a=[1.0])
    with pytest.raises(ValueError, match="same length"):
        buffer.append(a=[1.0], b=[1, 0])
    with pytest.raises(ValueError, match="Unknown column"):
        buffer.column("c")
