import json
import os

STATUS_OK = "ok"
STATUS_FAILED = "failed"


class ResultsStore:
    """`results.jsonl`: one JSON row per run, appended, never rewritten.

    A row has `cell_id`, `status` ("ok" or "failed") and whatever the runner
    records. The last row of a cell wins, except that a failure never hides
    an earlier success. Lines that do not parse (a run killed mid-write)
    are skipped and counted in `skipped_lines`.

    Args:
        path: str. The JSONL file (created on the first append).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.skipped_lines = 0

    def rows(self):
        self.skipped_lines = 0
        if not os.path.exists(self.path):
            return []
        rows = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    self.skipped_lines += 1
                    continue
                if not isinstance(row, dict) or "cell_id" not in row:
                    self.skipped_lines += 1
                    continue
                rows.append(row)
        return rows

    def latest(self, rows=None):
        """cell_id -> the row that stands for that cell."""
        out = {}
        for row in self.rows() if rows is None else rows:
            previous = out.get(row["cell_id"])
            if (
                previous is not None
                and previous.get("status") == STATUS_OK
                and row.get("status") != STATUS_OK
            ):
                continue
            out[row["cell_id"]] = row
        return out

    def finished_ids(self):
        return {
            cell_id
            for cell_id, row in self.latest().items()
            if row.get("status") == STATUS_OK
        }

    def append(self, row):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        line = json.dumps(row, sort_keys=True, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

