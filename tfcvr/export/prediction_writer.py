import csv
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

# Output file formats by file name ending.
PREDICTION_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def prediction_format(path):
    """The format of an output path from its extension (ValueError if none)."""
    for ending, fmt in PREDICTION_FORMATS.items():
        if path.lower().endswith(ending):
            return fmt
    raise ValueError(
        f"--out must end with {', '.join(PREDICTION_FORMATS)} (the format "
        f"comes from the extension). Received: {path}"
    )


class PredictionWriter:
    """Writes one line per scored row to a csv, jsonl or parquet file.

    Columns: the id column (text, when given), then one float column per
    output. Floats are written exactly: csv and jsonl hold each float32
    value as Python's shortest round-trip text of it, parquet holds
    float32. A context manager; batches are appended as they come.

    Args:
        path: str. Output file; its extension chooses the format.
        output_names: sequence of str. Output columns, in order.
        id_column: str or None. Name of the id column.
    """

    def __init__(self, path, output_names, id_column=None):
        self.path = path
        self.format = prediction_format(path)
        self.output_names = list(output_names)
        self.id_column = id_column
        self.columns = ([id_column] if id_column else []) + self.output_names
        self.rows = 0
        self._file = None
        self._csv = None
        self._parquet = None

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        if self.format == "parquet":
            fields = [pa.field(n, pa.float32()) for n in self.output_names]
            if self.id_column:
                fields.insert(0, pa.field(self.id_column, pa.string()))
            self._parquet = pq.ParquetWriter(self.path, pa.schema(fields))
            return self
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        if self.format == "csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(self.columns)
        return self

    def write(self, ids, outputs):
        """Appends rows: `ids` (list of str, or None) and `{output: float32
        array}` of one length."""
        n = len(outputs[self.output_names[0]])
        columns = [outputs[name] for name in self.output_names]
        if self._parquet is not None:
            arrays = {name: pa.array(outputs[name], pa.float32())
                      for name in self.output_names}
            if self.id_column:
                arrays = {self.id_column: pa.array(ids, pa.string()), **arrays}
            self._parquet.write_table(pa.table(arrays))
        else:
            for i in range(n):
                values = [float(column[i]) for column in columns]
                if self.id_column:
                    values.insert(0, ids[i])
                if self._csv is not None:
                    self._csv.writerow([repr(v) if isinstance(v, float) else v
                                        for v in values])
                else:
                    self._file.write(
                        json.dumps(dict(zip(self.columns, values))) + "\n"
                    )
        self.rows += n

    def __exit__(self, *exc):
        if self._parquet is not None:
            self._parquet.close()
        if self._file is not None:
            self._file.close()
        return False
