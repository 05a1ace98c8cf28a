import json

import pytest

from beam_jobs.example_logs import impression_frame
from tfcvr.cli.main import main
from tfcvr.features.input_spec import InputSpec


def test_schema_infer_prints_a_valid_spec(tmp_path, capsys):
    impression_frame(rows=200).to_csv(tmp_path / "log.csv", index=False)
    assert main(["schema", "infer", "--input", str(tmp_path / "log.csv")]) == 0
    spec = InputSpec.from_dict(json.loads(capsys.readouterr().out))
    assert spec.labels == {"click": "click", "conversion": "conversion"}
    assert spec.columns["hist"]["kind"] == "multi_categorical"


def test_schema_infer_writes_the_file(tmp_path, capsys):
    impression_frame(rows=50).to_parquet(tmp_path / "log.parquet")
    out = tmp_path / "spec.json"
    rc = main([
        "schema", "infer", "--input", str(tmp_path / "log.parquet"),
        "--rows", "30", "--out", str(out),
    ])
    assert rc == 0
    assert InputSpec.load(str(out)).user_id == "user_id"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "argv, message",
    [
        (["schema", "infer", "--input", "{tmp}/missing.csv"], "No input file"),
        (["schema", "infer", "--input", "{tmp}/log.xyz"], "Cannot tell the format"),
        (["schema"], "choose an action"),
    ],
)
def test_schema_errors(tmp_path, capsys, argv, message):
    (tmp_path / "log.xyz").write_text("a\n1\n")
    rc = main([a.format(tmp=tmp_path) for a in argv])
    assert rc == 2
    assert message in capsys.readouterr().err
