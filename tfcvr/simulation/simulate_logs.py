"""`simulate(...)`: write simulated impression logs with ground truth."""

import glob
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tfcvr.simulation import simulator as sim
from tfcvr.simulation.aliccp_writer import AliccpWriter
from tfcvr.simulation.aliccp_writer import COMMON_FILE
from tfcvr.simulation.aliccp_writer import GROUND_TRUTH_FILE
from tfcvr.simulation.aliccp_writer import SKELETON_FILE
from tfcvr.simulation.aliccp_writer import csv_bytes
from tfcvr.simulation.simulation_config import SimulationConfig
from tfcvr.simulation.simulator import Simulator
from tfcvr.features import keys

FORMATS = ("csv", "parquet", "aliccp")
SPEC_FILE = "spec.json"
SIMULATION_FILE = "simulation.json"
SHARD_FILE = "impressions-{:05d}-of-{:05d}.{}"

# Everything simulate() may write; the only files overwrite=True removes.
_OWN_PATTERNS = (
    "impressions-*-of-*.csv",
    "impressions-*-of-*.parquet",
    SKELETON_FILE.format("*"),
    COMMON_FILE.format("*"),
    GROUND_TRUTH_FILE.format("*"),
    SPEC_FILE,
    SIMULATION_FILE,
)


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer. Received: {name}={value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}. Received: {name}={value}")
    return int(value)


def _prepare_out_dir(out_dir, overwrite):
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out {out_dir} exists and is not a directory.")
    os.makedirs(out_dir, exist_ok=True)
    if not os.listdir(out_dir):
        return
    if not overwrite:
        raise ValueError(
            f"Output directory {out_dir} is not empty; pass overwrite=True "
            f"(--overwrite) to replace the simulator's files there."
        )
    for pattern in _OWN_PATTERNS:
        for path in glob.glob(os.path.join(out_dir, pattern)):
            os.remove(path)


def _arrow_type(column):
    if column in sim.STRING_COLUMNS:
        return pa.string()
    if column in sim.GROUND_TRUTH_COLUMNS and column in sim.FLOAT_COLUMNS:
        return pa.float32()
    if column in sim.FLOAT_COLUMNS:
        return pa.float64()
    return pa.int64()


def _arrow_table(columns):
    # Explicit types: a chunk's content never changes a file's schema.
    return pa.table(
        {c: pa.array(v, type=_arrow_type(c)) for c, v in columns.items()}
    )


class _ShardedTableWriter:
    """Splits the time-ordered rows into `shards` contiguous csv/parquet files."""

    def __init__(self, out_dir, fmt, rows, shards):
        self.fmt = fmt
        self.bounds = [rows * s // shards for s in range(shards + 1)]
        self.paths = [
            os.path.join(out_dir, SHARD_FILE.format(s, shards, fmt))
            for s in range(shards)
        ]
        self.rows_per_file = [b - a for a, b in zip(self.bounds, self.bounds[1:])]
        self._shard = -1
        self._sink = None

    def _open(self, shard, columns):
        self.close()
        self._shard = shard
        path = self.paths[shard]
        if self.fmt == "csv":
            self._sink = open(path, "wb")
            self._sink.write((",".join(sim.LOG_COLUMNS) + "\n").encode())
        else:
            self._sink = pq.ParquetWriter(path, _arrow_table(columns).schema)

    def write(self, columns, first_row):
        """Writes rows `first_row ..` (0-based) of the whole log."""
        n = len(columns[keys.ROW_ID])
        start = 0
        while start < n:
            row = first_row + start
            shard = int(np.searchsorted(self.bounds, row, side="right")) - 1
            end = min(n, self.bounds[shard + 1] - first_row)
            part = {c: v[start:end] for c, v in columns.items()}
            if shard != self._shard:
                self._open(shard, part)
            if self.fmt == "csv":
                self._sink.write(csv_bytes(part))
            else:
                self._sink.write_table(_arrow_table(part))
            start = end

    def close(self):
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def simulate(
    out_dir,
    rows=100_000,
    seed=None,
    selection_bias=None,
    fmt="csv",
    ctr=None,
    cvr=None,
    num_users=None,
    num_items=None,
    shards=1,
    config=None,
    overwrite=False,
    progress=False,
):
    """Simulates `rows` impressions and writes them as raw logs.

    Formats: `"csv"` and `"parquet"` write `impressions-SSSSS-of-NNNNN.*`
    (the time-ordered rows in `shards` contiguous files; columns
    `simulator.LOG_COLUMNS`) and `spec.json`, the input spec of those
    columns; `"aliccp"` writes the raw Tianchi files
    `sample_skeleton_{train,test}.csv`, `common_features_{train,test}.csv`
    and `ground_truth_{train,test}.csv` (see `AliccpWriter`). Every format
    also writes `simulation.json` (config, intercepts, realised rates).
    The same arguments give the same bytes.

    Args:
        out_dir: str. Output directory (created; must be empty unless
            `overwrite`).
        rows: int >= 1. Impressions.
        seed, selection_bias, ctr, cvr, num_users, num_items: override the
            `SimulationConfig` fields of the same name when not None.
        fmt: str. `"csv"`, `"parquet"` or `"aliccp"`.
        shards: int. Output files for csv/parquet (1 for aliccp).
        config: `SimulationConfig` or None (the defaults).
        overwrite: bool. Allow a non-empty `out_dir`; removes only files
            that `simulate` writes.
        progress: bool. Show a tqdm progress bar on stderr.

    Returns:
        dict: `format`, `out_dir`, `rows`, `files` (log files), `spec`
        (path or None), `simulation` (path), `rows_per_file`, `splits`
        (aliccp: rows per split), `clicks`, `conversions`,
        `realised_ctr`, `realised_cvr_clicked` (CVR among clicks),
        `realised_cvr_all` (counterfactual CVR over every impression),
        `realised_ctcvr`, `seconds`.
    """
    started = time.perf_counter()
    rows = _check_int("rows", rows, 1)
    shards = _check_int("shards", shards, 1)
    if fmt not in FORMATS:
        raise ValueError(
            f"Unknown format {fmt!r}; expected one of {list(FORMATS)}."
        )
    if fmt == "aliccp" and shards != 1:
        raise ValueError(
            f"The aliccp format writes one train and one test file; "
            f"shards must be 1. Received: shards={shards}"
        )
    if shards > rows:
        raise ValueError(
            f"shards must not exceed rows. Received: shards={shards}, "
            f"rows={rows}"
        )
    if config is None:
        config = SimulationConfig()
    if not isinstance(config, SimulationConfig):
        raise ValueError(
            f"config must be a SimulationConfig. Received: "
            f"{type(config).__name__}"
        )
    overrides = {
        "seed": seed,
        "selection_bias": selection_bias,
        "ctr": ctr,
        "cvr": cvr,
        "num_users": num_users,
        "num_items": num_items,
    }
    config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    out_dir = os.fspath(out_dir)
    _prepare_out_dir(out_dir, overwrite)

    simulator = Simulator(config)
    totals = dict.fromkeys(
        ("clicks", "conversions", "conversion_if_clicked"), 0
    )
    if fmt == "aliccp":
        writer = AliccpWriter(out_dir, simulator, rows)
    else:
        writer = _ShardedTableWriter(out_dir, fmt, rows, shards)

    from tqdm import tqdm

    bar = tqdm(
        total=rows,
        unit="rows",
        unit_scale=True,
        desc=f"simulate {fmt}",
        disable=not progress,
    )
    written = 0
    try:
        for chunk in simulator.iter_chunks(rows, context=fmt == "aliccp"):
            totals["clicks"] += int(chunk[keys.CLICK].sum())
            totals["conversions"] += int(chunk[keys.CONVERSION].sum())
            totals["conversion_if_clicked"] += int(
                chunk[keys.CONVERSION_IF_CLICKED].sum()
            )
            if fmt == "aliccp":
                writer.write(chunk)
            else:
                writer.write(chunk, written)
            n = len(chunk[keys.ROW_ID])
            written += n
            bar.update(n)
    finally:
        writer.close()
        bar.close()

    clicks = totals["clicks"]
    stats = {
        "rows": rows,
        "clicks": clicks,
        "conversions": totals["conversions"],
        "realised_ctr": clicks / rows,
        "realised_cvr_clicked": totals["conversions"] / clicks if clicks else None,
        "realised_cvr_all": totals["conversion_if_clicked"] / rows,
        "realised_ctcvr": totals["conversions"] / rows,
    }
    if fmt == "aliccp":
        files = writer.files()
        rows_per_file = None
        splits = {s: c["skeleton"] for s, c in writer.counts.items()}
        spec_path = None
    else:
        files = list(writer.paths)
        rows_per_file = list(writer.rows_per_file)
        splits = None
        spec_path = os.path.join(out_dir, SPEC_FILE)
        with open(spec_path, "w") as f:
            json.dump(simulator.input_spec(), f, indent=2)
            f.write("\n")
    simulation_path = os.path.join(out_dir, SIMULATION_FILE)
    with open(simulation_path, "w") as f:
        record = {
            "format": fmt,
            "shards": shards,
            "config": config.to_dict(),
            "cardinalities": {
                "categories": config.category_count,
                "brands": config.brand_count,
                "shops": config.shop_count,
                "intentions": config.intention_count,
            },
            "intercepts": simulator.intercepts,
            "files": [os.path.basename(p) for p in files],
            "splits": splits,
            **stats,
        }
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    return {
        "format": fmt,
        "out_dir": out_dir,
        "files": files,
        "spec": spec_path,
        "simulation": simulation_path,
        "rows_per_file": rows_per_file,
        "splits": splits,
        **stats,
        "seconds": time.perf_counter() - started,
    }
