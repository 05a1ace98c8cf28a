"""Counts of a raw log read for scoring or evaluation."""


class LogCounts:
    """Records of a log read so far: rows in, good rows, dead letters by
    reason."""

    def __init__(self):
        self.rows_in = 0
        self.good = 0
        self.rejected = {}

    @property
    def rejected_total(self):
        return sum(self.rejected.values())

    def add(self, row, dead):
        self.rows_in += 1
        if row is not None:
            self.good += 1
        else:
            reason = dead["reason"]
            self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def reject(self, reason, n=1):
        """Moves `n` good rows to the dead letters (refused after reading)."""
        self.good -= n
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    def reasons(self):
        """`"bad_label 2, wrong_field_count 1"` (empty without dead letters)."""
        return ", ".join(
            f"{reason} {n:,}" for reason, n in sorted(self.rejected.items())
        )
