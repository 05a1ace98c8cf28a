import json

import pytest

from tfcvr.bench import overhead_benchmark


# 35 s of benchmark rounds: `make test-large` (and CI) runs it.
@pytest.mark.large
def test_every_piece_and_step_is_timed(tmp_path):
    from tfcvr.cli.main import main

    out = tmp_path / "overhead.jsonl"
    assert main(["bench", "overhead", "--batch-size", "64", "--batches", "2",
                 "--rounds", "1", "--calls", "2", "--steps-per-execution", "1",
                 "--out", str(out)]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["piece"] for r in results] == list(
        overhead_benchmark.PIECES + overhead_benchmark.STEPS)
    assert all(r["wall_ms_per_batch"] > 0 and r["cpu_ms_per_batch"] >= 0
               for r in results)
