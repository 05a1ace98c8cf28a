"""Growable columnar storage for streaming metrics (private)."""

import numpy as np


class ColumnBuffer:
    """Appends batches of equal-length numpy columns into fixed-size chunks.

    Rows live in preallocated chunks of `chunk_rows` rows per column, so a
    stream of 10^7 predictions costs its bytes (e.g. 4 per float32 score) plus
    at most one partly filled chunk, never a Python object per row. Reading a
    column concatenates the chunks once and keeps the result as the single
    chunk, so repeated reads are free.

    Args:
        dtypes: dict of column name -> numpy dtype.
        chunk_rows: int. Rows per chunk. Defaults to 2**20.
    """

    def __init__(self, dtypes, chunk_rows=2**20):
        if not dtypes:
            raise ValueError(
                f"A buffer needs columns. Received: dtypes={dtypes}"
            )
        if int(chunk_rows) < 1:
            raise ValueError(
                "`chunk_rows` must be positive. Received: "
                f"chunk_rows={chunk_rows}"
            )
        self.dtypes = {name: np.dtype(d) for name, d in dtypes.items()}
        self.chunk_rows = int(chunk_rows)
        self.clear()

    def clear(self):
        # Each chunk: [dict name -> array, rows used, capacity]. Only the last
        # chunk can be partly filled.
        self._chunks = []
        self._size = 0

    def __len__(self):
        return self._size

    def nbytes(self):
        return sum(
            array.nbytes
            for chunk in self._chunks
            for array in chunk[0].values()
        )

    def append(self, **columns):
        if set(columns) != set(self.dtypes):
            raise ValueError(
                f"Expected columns {sorted(self.dtypes)}. Received: "
                f"{sorted(columns)}"
            )
        arrays = {
            name: np.asarray(v).reshape(-1) for name, v in columns.items()
        }
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                "All columns of a batch need the same length. Received: "
                f"{lengths}"
            )
        n = next(iter(lengths.values()))
        start = 0
        while start < n:
            if not self._chunks or self._chunks[-1][1] == self._chunks[-1][2]:
                self._chunks.append(
                    [
                        {
                            name: np.empty(self.chunk_rows, dtype)
                            for name, dtype in self.dtypes.items()
                        },
                        0,
                        self.chunk_rows,
                    ]
                )
            chunk = self._chunks[-1]
            used = chunk[1]
            take = min(chunk[2] - used, n - start)
            for name, array in arrays.items():
                chunk[0][name][used : used + take] = array[start : start + take]
            chunk[1] = used + take
            start += take
        self._size += n

    def _consolidate(self):
        if len(self._chunks) == 1 and self._chunks[0][1] == self._chunks[0][2]:
            return
        merged = {
            name: np.concatenate(
                [chunk[0][name][: chunk[1]] for chunk in self._chunks]
                or [np.empty(0, dtype)]
            )
            for name, dtype in self.dtypes.items()
        }
        # The merged chunk is exactly full, so the next append opens a new one.
        self._chunks = [[merged, self._size, self._size]]

    def column(self, name):
        """Returns the `name` column of every row appended so far."""
        if name not in self.dtypes:
            raise ValueError(
                f"Unknown column. Received: name={name!r}; columns are "
                f"{sorted(self.dtypes)}"
            )
        self._consolidate()
        return self._chunks[0][0][name]
