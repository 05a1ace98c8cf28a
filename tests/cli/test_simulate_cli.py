import json
import os

import pandas as pd
import pytest

from tfcvr.cli.main import main
from tfcvr.features import keys

SMALL = ["--num-users", "500", "--num-items", "800"]


def test_simulate_csv_smoke(tmp_path, capsys):
    out = tmp_path / "logs"
    rc = main(["simulate", "--out", str(out), "--rows", "2_000", "--seed", "3",
               "--selection-bias", "0.5", "--ctr", "0.05", "--cvr", "0.02", *SMALL])
    assert rc == 0
    printed = capsys.readouterr().out.strip()
    assert "\n" not in printed
    for text in ("2,000 impressions", "CTR", "CVR among clicks", "CVR over all",
                 "impressions-00000-of-00001.csv", "spec.json"):
        assert text in printed
    frame = pd.read_csv(out / "impressions-00000-of-00001.csv", keep_default_na=False)
    assert len(frame) == 2000
    record = json.loads((out / "simulation.json").read_text())
    assert record["config"]["selection_bias"] == 0.5
    assert record["config"]["ctr"] == 0.05
    assert record["config"]["num_users"] == 500
    assert record["clicks"] == frame[keys.CLICK].sum()
    assert f"{100 * record['realised_ctr']:.3g}%" in printed


def test_simulate_aliccp_and_shards(tmp_path, capsys):
    rc = main(["simulate", "--out", str(tmp_path / "a"), "--rows", "1e3",
               "--format", "aliccp", *SMALL])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "500 train, 500 test" in printed
    assert sorted(os.listdir(tmp_path / "a")) == sorted(
        [f"{kind}_{split}.csv" for kind in ("sample_skeleton", "common_features",
                                            "ground_truth")
         for split in ("train", "test")] + ["simulation.json"]
    )
    rc = main(["simulate", "--out", str(tmp_path / "p"), "--rows", "1000",
               "--format", "parquet", "--shards", "2", *SMALL])
    assert rc == 0
    assert sorted(os.listdir(tmp_path / "p")) == [
        "impressions-00000-of-00002.parquet",
        "impressions-00001-of-00002.parquet",
        "simulation.json",
        "spec.json",
    ]


def test_simulate_refuses_non_empty_dir_without_overwrite(tmp_path, capsys):
    args = ["simulate", "--out", str(tmp_path), "--rows", "300", *SMALL]
    (tmp_path / "other.txt").write_text("x")
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rows", "-5"], "--rows"),
        (["--rows", "0"], "--rows"),
        (["--rows", "many"], "--rows"),
        (["--ctr", "1.5"], "--ctr"),
        (["--cvr", "0"], "--cvr"),
        (["--format", "xml"], "--format"),
        (["--format", "aliccp", "--shards", "2"], "shards"),
    ],
)
def test_simulate_bad_arguments(tmp_path, capsys, extra, message):
    rc = main(["simulate", "--out", str(tmp_path / "x"), *SMALL, *extra])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("tfcvr simulate: error:") and message in err
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")
