"""Scores every good row of a raw log into a prediction file."""

import json

from tqdm.auto import tqdm

from beam_jobs.readers import dead_letter as dl
from tfcvr.export.log_counts import LogCounts
from tfcvr.export.prediction_writer import PredictionWriter
from tfcvr.export.raw_log import iter_log_batches
from tfcvr.export.raw_log import row_id


def predict_log(scorer, reader, out, rejected_path, batch_size=4096,
                id_column=None, progress=False):
    """Writes one prediction per good row of a log, dead letters aside.

    Good rows are those the Beam job would keep (the readers' own rules);
    with a SavedModel, rows lacking one of its required features are dead
    letters too (`missing_required_feature`): its serving contract refuses
    them. Rows in = rows predicted + rows rejected, checked.

    Args:
        scorer: `tfcvr.export.log_scorer.LogScorer`.
        reader: a reader from `tfcvr.export.raw_log.open_log`.
        out: str. Prediction file (.csv, .jsonl or .parquet).
        rejected_path: str. Dead letters, one JSON object per line.
        batch_size: int. Rows scored per call.
        id_column: str or None. Output name of the id the reader passes
            through (its spec's row key); None writes no id column.
        progress: bool. Show a progress bar (rows).

    Returns:
        `tfcvr.export.log_counts.LogCounts` of the run.
    """
    counts = LogCounts()
    # On a terminal only (None): logs and pipes get the count line alone.
    bar = tqdm(desc="predict", unit="row", disable=None if progress else True)
    try:
        with PredictionWriter(out, scorer.output_names, id_column) as writer, \
                open(rejected_path, "w", encoding="utf-8") as rejected_file:
            for rows, rejected in iter_log_batches(reader, batch_size, counts):
                kept = []
                for row in rows:
                    missing = scorer.lacks_required(row)
                    if missing is None:
                        kept.append(row)
                        continue
                    counts.reject(dl.MISSING_REQUIRED_FEATURE)
                    rejected.append(dl.rejected_record(
                        dl.MISSING_REQUIRED_FEATURE, "",
                        f"{scorer.source} requires feature {missing!r}",
                        json.dumps(row, sort_keys=True, default=str),
                    ))
                for record in rejected:
                    rejected_file.write(
                        json.dumps(record, ensure_ascii=False) + "\n"
                    )
                if kept:
                    ids = [row_id(r) for r in kept] if id_column else None
                    writer.write(ids, scorer.score(kept))
                bar.update(len(kept) + len(rejected))
    finally:
        bar.close()
    if counts.rows_in != writer.rows + counts.rejected_total:
        raise RuntimeError(
            f"Row accounting failed: {counts.rows_in} rows in, {writer.rows} "
            f"predicted, {counts.rejected_total} rejected."
        )
    return counts
