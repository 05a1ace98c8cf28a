import argparse
import subprocess
import sys

import pytest

from tfcvr.bench.grid import ResultsStore
from tfcvr.bench.grid import command as gb
from tfcvr.cli.main import main

REGISTERED = ["aitm", "esmm", "escm2_ips", "naive"]
BACKBONES = ["mmoe", "towers"]


def _args(*argv):
    parser = argparse.ArgumentParser()
    gb.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_the_default_preset():
    config = gb.build_config(_args(), REGISTERED, BACKBONES)
    assert config.models == tuple(m for m in REGISTERED if m != "esm2")
    assert config.seeds == (0, 1, 2) and config.selection_biases == (0.0, 1.0, 2.0)
    smoke = gb.build_config(_args("--preset", "smoke"), REGISTERED, BACKBONES)
    assert smoke.models == ("naive", "esmm", "escm2_ips")
    assert smoke.seeds == (0, 1) and smoke.selection_biases == (0.0, 2.0)


def test_flags_override_the_preset():
    config = gb.build_config(_args(
        "--preset", "smoke", "--models", "all", "--seeds", "3", "--selection-bias", "0,1,3", "--rows", "5e3",
        "--epochs", "2", "--batch-size", "256", "--embedding-dim", "4",
        "--data-seed", "per-run", "--param", "ctr_weight=0.5",
        "--param", "backbone_config.dropout=0.1"), REGISTERED, BACKBONES)
    assert config.models == tuple(REGISTERED)
    assert config.seeds == (0, 1, 2) and config.selection_biases == (0.0, 1.0, 3.0)
    assert config.rows == 5000 and config.data_seed is None
    train = config.train
    assert (train.epochs, train.batch_size, train.embedding_dim) == (2, 256, 4)
    assert train.params == {"ctr_weight": 0.5}
    assert train.backbone_config == {"hidden_units": [32, 16], "dropout": 0.1}


def test_another_backbone_starts_from_its_defaults():
    config = gb.build_config(_args("--backbone", "mmoe", "--param",
                                   "backbone_config.num_experts=2"), REGISTERED, BACKBONES)
    assert config.train.backbone == "mmoe"
    assert config.train.backbone_config == {"num_experts": 2}
    with pytest.raises(ValueError, match="Unknown backbone"):
        gb.build_config(_args("--backbone", "transformer"), REGISTERED, BACKBONES)


def test_seed_and_bias_parsing():
    assert gb.parse_seeds("2") == (0, 1)
    assert gb.parse_seeds("4,1") == (4, 1)
    assert gb.parse_biases("none") == ()
    assert gb.parse_biases("0, 1.5,1.5") == (0.0, 1.5)
    for bad in ("0", "x", "1.5"):
        with pytest.raises(ValueError, match="--seeds"):
            gb.parse_seeds(bad)
    with pytest.raises(ValueError, match="--selection-bias"):
        gb.parse_biases("1,-2")


def test_unknown_model_is_a_one_line_error():
    with pytest.raises(ValueError, match="Unknown estimator.*nise.*Registered"):
        gb.build_config(_args("--models", "esmm,nise"), REGISTERED, BACKBONES)


def test_datasets_flag_checks_directories(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        gb.build_config(_args("--datasets", str(tmp_path / "nope")), REGISTERED, BACKBONES)


def test_report_only_through_the_cli(tmp_path, capsys):
    assert main(["bench", "grid", "--report-only", "--out", str(tmp_path)]) == 2
    assert "No results" in capsys.readouterr().err
    store = ResultsStore(tmp_path / "results.jsonl")
    for seed, auc in ((0, 0.61), (1, 0.63)):
        store.append({"cell_id": f"c{seed}", "group_id": "g", "status": "ok",
                      "model": "esmm", "seed": seed, "dataset": "sim-bias1",
                      "selection_bias": 1.0, "has_ground_truth": True,
                      "metrics": {"cvr_auc_true": auc}})
    assert main(["bench", "grid", "--report-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.6200 ± 0.0141" in out
    # No suite named: the grid, with its own flags.
    assert main(["bench", "--report-only", "--out", str(tmp_path)]) == 0
    assert "0.6200 ± 0.0141" in capsys.readouterr().out
    assert main(["bench", "nope"]) == 2
    assert "Unknown benchmark suite" in capsys.readouterr().err
    assert (tmp_path / "report.md").exists() and (tmp_path / "plots" / "metric_vs_bias.png").exists()


def test_the_grid_parent_imports_neither_tensorflow_nor_keras():
    # It only plans, starts child processes and writes the report.
    code = ("import sys, tfcvr.bench.grid.command; "
            "bad = [n for n in ('tensorflow', 'keras', 'apache_beam', 'matplotlib') "
            "if n in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


ARGUMENTS = {"esmm": ["ctr_weight", "backbone_config"], "naive": ["ctr_weight"],
             "aitm": [], "escm2_ips": []}


def test_models_take_variants_and_groups():
    config = gb.build_config(_args(
        "--models", "naive,esmm,esmm-w=esmm:ctr_weight=2:backbone_config.hidden_units=[8,4],"
        "naive,esmm-w=esmm:ctr_weight=2.0:backbone_config.hidden_units=[8,4]"),
        REGISTERED, BACKBONES, ARGUMENTS)
    # Repeated identical entries count once (2 and 2.0 spell one value).
    assert config.labels == ["naive", "esmm", "esmm-w"]
    variant = config.models[2]
    assert variant.overrides == {"ctr_weight": 2, "backbone_config": {"hidden_units": [8, 4]}}
    cells = [c for c in config.cells() if c.seed == 0 and c.dataset.selection_bias == 0]
    assert [c.label for c in cells] == ["naive", "esmm", "esmm-w"]
    assert cells[2].model == "esmm" and cells[2].cell_id != cells[1].cell_id
    grouped = gb.resolve_models("esmm,@cstwa-ablation", ["esmm", "cstwa"], ())
    assert [getattr(m, "label", m) for m in grouped] == [
        "esmm", "cstwa-no-sm", "cstwa-no-cp", "cstwa-no-ce"]


@pytest.mark.parametrize("models, message", [
    ("esmm,mystery", "Unknown estimator.*mystery"),
    ("x=mystery:ctr_weight=1", r"mystery \(in variant x\)"),
    ("x=esmm:ctr_wieght=1", "esmm has no constructor argument ctr_wieght"),
    ("x=esmm:ctr_weight=1,x=naive:ctr_weight=1", "duplicate label 'x'"),
    ("x=esmm:ctr_weight=1,x=esmm:ctr_weight=2", "duplicate label 'x'"),
    ("naive=esmm", "registered estimator"),
    ("@cstwa-ablations", "Unknown model group"),
    (",", "names no estimator"),
])
def test_bad_variants_are_one_line_errors(models, message):
    with pytest.raises(ValueError, match=message):
        gb.build_config(_args("--models", models), REGISTERED, BACKBONES, ARGUMENTS)


def test_baseline():
    assert gb.resolve_baseline(None, ["naive", "esmm"]) == "esmm"
    assert gb.resolve_baseline(None, ["naive", "aitm"]) == "naive"
    assert gb.resolve_baseline("aitm", ["naive", "aitm"]) == "aitm"
    with pytest.raises(ValueError, match="--baseline 'dcmt' is not a row"):
        gb.resolve_baseline("dcmt", ["naive", "esmm"])
