import json

from tfcvr.bench import input_benchmark


def test_every_stage_drains_the_rows(tmp_path):
    from tfcvr.cli.main import main

    out = tmp_path / "input.jsonl"
    assert main(["bench", "input", "--rows", "600", "--batch-size", "128",
                 "--epochs", "1", "--data-dir", str(tmp_path / "data"),
                 "--out", str(out)]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["stage"] for r in results] == list(input_benchmark.STAGES)
    assert all(r["rows_per_second"] > 0 and r["rows"] == 600 for r in results)
    # The uncompressed copies hold the same records.
    copies = sorted((tmp_path / "data" / "uncompressed").iterdir())
    assert len(copies) == 4 and not any(p.suffix == ".gz" for p in copies)
