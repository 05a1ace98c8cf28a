import json

import pytest

from tfcvr.bench.grid import ResultsStore
from tfcvr.bench.grid import report
from tfcvr.evaluation import metric_names as m

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _curve(scale):
    return {"mean_prediction": [0.01 * scale, 0.05 * scale, 0.1 * scale],
            "observed_rate": [0.012, 0.04, 0.11], "count": [10, 10, 10],
            "lower": [0, 0.03, 0.07], "upper": [0.03, 0.07, 0.2]}


def _row(model, seed, bias, auc_true, bias_unclicked, status="ok", dataset=None,
         aliccp=False, truth=True, **extra):
    metrics = {
        m.CVR_AUC_TRUE: auc_true, m.CVR_BIAS_UNCLICKED: bias_unclicked,
        m.CVR_RMSE_TRUE: 0.1, m.CVR_AUC_CLICKED: 0.7, m.CVR_AUC_EXPOSURE: 0.65,
        m.CTCVR_AUC: 0.66, m.CTR_AUC: 0.6, m.CVR_PCOC_CLICKED: 1.0,
        m.CVR_ECE_CLICKED: 0.01, m.CTCVR_PCOC: 1.1, m.CTCVR_ECE: 0.001,
        m.RELIABILITY: {m.RELIABILITY_CVR_CLICKED: _curve(1), m.RELIABILITY_CTCVR: _curve(0.1),
                        m.RELIABILITY_CVR_UNCLICKED_TRUE: _curve(2)},
        m.CVR_BIAS_BY_CTR_BIN_UNCLICKED: {"bias": [0.01 * k * (seed + 1) for k in range(10)]},
    }
    if not truth:
        for name in (m.CVR_AUC_TRUE, m.CVR_BIAS_UNCLICKED, m.CVR_RMSE_TRUE,
                     m.CVR_BIAS_BY_CTR_BIN_UNCLICKED):
            metrics.pop(name)
        metrics[m.RELIABILITY].pop(m.RELIABILITY_CVR_UNCLICKED_TRUE)
    row = {
        "cell_id": f"{model}-{seed}-{bias}-{dataset}", "group_id": f"{model}-{bias}-{dataset}",
        "status": status, "error": None if status == "ok" else "ValueError: boom | pipe",
        "model": model, "seed": seed, "dataset": dataset or f"sim-bias{bias:g}",
        "selection_bias": bias, "aliccp": aliccp, "has_ground_truth": truth,
        "config": {"train": {"epochs": 1, "batch_size": 64, "learning_rate": 0.001,
                             "embedding_dim": 4, "backbone": "towers",
                             "backbone_config": {}, "params": {}, "precision": "float32"},
                   "dataset": {"kind": "simulated", "selection_bias": bias, "seed": 0,
                               "rows": 1000, "ctr": 0.1, "cvr": 0.1}},
        "metrics": metrics if status == "ok" else {},
        "examples_per_second": 1000.0 * (seed + 1), "peak_rss_mb": 512.0, "train_seconds": 2.0,
        "versions": {"tfcvr": "0.1.0", "keras": "3", "tensorflow": "2", "backend": "tensorflow"},
    }
    row.update(extra)
    return row


def _rows():
    return [
        _row("naive", 0, 0.0, 0.60, -0.01),
        _row("naive", 1, 0.0, 0.62, 0.03),
        _row("naive", 2, 0.0, 0.64, None),  # undefined in one run
        _row("esmm", 0, 0.0, 0.70, 0.0),
        _row("esmm", 1, 0.0, 0.0, 0.0, status="failed"),
        _row("naive", 0, 2.0, 0.55, 0.05),
        _row("esmm", 0, 2.0, 0.68, 0.01),
    ]


def _cells(text):
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def test_mean_std_is_sample_std_over_finite_values():
    stats = report.mean_std([0.60, 0.62, 0.64, None, float("nan")])
    assert stats["n"] == 3 and stats["total"] == 5
    assert stats["mean"] == pytest.approx(0.62)
    assert stats["std"] == pytest.approx(0.02)  # ddof = 1
    one = report.mean_std([0.5])
    assert one["std"] is None and report.format_mean_std(one) == "0.5000"
    assert report.format_mean_std(report.mean_std([None])) == "n/a"
    assert report.format_mean_std(stats, 3) == "0.620 ± 0.020 (3/5)"
    assert report.format_mean_std(report.mean_std([-0.01, 0.03]), 4, signed=True) \
        == "+0.0100 ± 0.0283"
    assert report.format_mean_std(report.mean_std([1234.4, 1234.6]), 0) == "1,234 ± 0"


def test_group_rows_orders_and_aggregates():
    groups = report.group_rows(_rows(), model_order=["naive", "esmm"])
    assert [(g["dataset"], g["model"]) for g in groups] == [
        ("sim-bias0", "naive"), ("sim-bias0", "esmm"), ("sim-bias2", "naive"),
        ("sim-bias2", "esmm")]
    naive0 = groups[0]["stats"]
    assert naive0[m.CVR_AUC_TRUE]["mean"] == pytest.approx(0.62)
    assert naive0[m.CVR_BIAS_UNCLICKED]["n"] == 2
    assert naive0[report.EXAMPLES_PER_SECOND]["mean"] == pytest.approx(2000.0)
    assert naive0[report.EXAMPLES_PER_SECOND]["std"] == pytest.approx(1000.0)
    # The failed esmm seed counts as a run without a value.
    esmm0 = groups[1]["stats"][m.CVR_AUC_TRUE]
    assert (esmm0["n"], esmm0["total"], esmm0["mean"]) == (1, 2, 0.70)


def test_markdown_report(tmp_path):
    text = report.render_markdown(_rows(), plots=["plots/a.png"], model_order=["naive", "esmm"])
    for name in report.REPORT_METRICS:
        assert report.COLUMN_TITLES.get(name, name) in text
    lines = text.splitlines()
    naive_truth = next(line for line in lines
                       if line.startswith("| sim-bias0 ") and "naive" in line and "±" in line)
    cells = [c.strip() for c in naive_truth.strip("|").split("|")]
    assert cells[:3] == ["sim-bias0", "naive", "3/3"]
    assert cells[3] == "0.6200 ± 0.0200"
    assert cells[4] == "+0.0100 ± 0.0283 (2/3)"
    esmm = next(line for line in lines if line.startswith("| sim-bias0 ") and "esmm" in line)
    assert "1/2" in esmm and "0.7000 (1/2)" in esmm
    assert "## Failed runs" in text and "ValueError: boom / pipe" in text
    assert "![a](plots/a.png)" in text
    assert "Paper reference numbers" not in text


def test_aliccp_dataset_gets_the_reference_numbers():
    rows = [_row("esmm", s, None, 0, 0, dataset="aliccp", aliccp=True, truth=False)
            for s in (0, 1)]
    rows[1]["metrics"][m.CVR_AUC_CLICKED] = 0.72
    text = report.render_markdown(rows)
    assert "## Paper reference numbers (Ali-CCP)" in text
    assert "Against the simulator's ground truth" not in text
    table = _cells(text)
    esmm_table2 = next(c for c in table if c[:4] == [
        "ESMM (SIGIR'18) Table 2", "cvr_auc_clicked", "MLP", "ESMM"])
    assert esmm_table2[4:] == ["0.6856", "esmm", "0.7100 ± 0.0141"]
    nise = next(c for c in table if c[:4] == [
        "NISE (RecSys'24) Table 2", "cvr_auc_exposure", "MLP", "ESMM"])
    assert nise[4:] == ["0.6287 ± 0.0024", "esmm", "0.6500 ± 0.0000"]
    # A paper network other than the grid's backbone is not compared.
    deepfm = next(c for c in table if c[:4] == [
        "NISE (RecSys'24) Table 2", "cvr_auc_exposure", "DeepFM", "ESMM"])
    assert deepfm[6] == "-"
    # No tfcvr counterpart.
    aman = next(c for c in table if c[3] == "AMAN")
    assert aman[5:] == ["-", "-"]
    assert any(c[0] == "Multi-IPW/DR (WWW'20) Table 3 [MED]" for c in table)


def test_write_report_writes_markdown_and_pngs(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    for row in _rows()[:5]:
        store.append(json.loads(json.dumps(row)))
    written = report.write_report(list(store.latest().values()), str(tmp_path))
    names = sorted(p.rsplit("/", 1)[-1] for p in written["plots"])
    assert names == ["cvr_bias_by_ctr_decile_sim-bias0.png", "metric_vs_bias.png",
                     "reliability_sim-bias0.png"]
    for path in written["plots"]:
        with open(path, "rb") as f:
            data = f.read()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    text = (tmp_path / "report.md").read_text()
    assert "](plots/metric_vs_bias.png)" in text
    assert written["tables"] in text


def test_no_plots_without_data(tmp_path):
    rows = [_row("esmm", 0, 0.0, 0.6, 0.0, status="failed")]
    assert report.write_plots(report.group_rows(rows), str(tmp_path)) == []
    assert list(tmp_path.glob("*.png")) == []


def _variant_rows():
    rows = []
    for seed, (base_auc, base_bias) in enumerate(((0.60, 0.05), (0.64, 0.03), (0.62, 0.04))):
        rows.append(_row("esmm", seed, 2.0, base_auc, base_bias, train_seconds=10.0))
        rows.append(_row("cstwa", seed, 2.0, base_auc + 0.01 * (seed + 1), base_bias - 0.01,
                         train_seconds=20.0 + 10.0 * seed))
        off = _row("cstwa", seed, 2.0, base_auc - 0.02, base_bias, label="cstwa-no-sm",
                   overrides={"use_structure_migrator": False}, train_seconds=5.0)
        off["cell_id"] += "-no-sm"
        off["group_id"] += "-no-sm"
        rows.append(off)
    return rows


def test_variant_rows_are_labelled_and_paired_with_the_baseline():
    rows = _variant_rows()
    groups = report.group_rows(rows, model_order=["esmm", "cstwa", "cstwa-no-sm"])
    assert [(g["model"], g["estimator"]) for g in groups] == [
        ("esmm", "esmm"), ("cstwa", "cstwa"), ("cstwa-no-sm", "cstwa")]
    pairs = {p["group"]["model"]: p for p in report.paired_differences(groups, "esmm")}
    assert set(pairs) == {"cstwa", "cstwa-no-sm"}
    cstwa = pairs["cstwa"]
    assert cstwa["pairs"] == 3
    # Per seed: +0.01, +0.02, +0.03 -> mean 0.02, std 0.01.
    assert cstwa["diffs"][m.CVR_AUC_TRUE]["mean"] == pytest.approx(0.02)
    assert cstwa["diffs"][m.CVR_AUC_TRUE]["std"] == pytest.approx(0.01)
    assert cstwa["diffs"][m.CVR_BIAS_UNCLICKED]["mean"] == pytest.approx(-0.01)
    assert cstwa["diffs"][m.CVR_AUC_CLICKED]["mean"] == pytest.approx(0.0)
    # Training time 20/10, 30/10, 40/10.
    assert cstwa["train_ratio"]["mean"] == pytest.approx(3.0)
    assert pairs["cstwa-no-sm"]["train_ratio"]["mean"] == pytest.approx(0.5)
    assert pairs["cstwa-no-sm"]["diffs"][m.CVR_AUC_TRUE]["mean"] == pytest.approx(-0.02)
    text = report.render_markdown(rows, model_order=["esmm", "cstwa", "cstwa-no-sm"],
                                  baseline="esmm")
    assert "### Paired with `esmm`" in text
    paired = text.split("### Paired with `esmm`")[1]
    line = next(c for c in _cells(paired) if c[1] == "cstwa-no-sm")
    assert line[:4] == ["sim-bias2", "cstwa-no-sm", "3", "-0.0200 ± 0.0000"]
    assert line[-1] == "0.50 ± 0.00"
    truth = next(c for c in _cells(text) if c[1] == "cstwa-no-sm")
    assert truth[2] == "3/3"
    # Without a baseline row there is nothing to pair.
    assert report.paired_differences(groups, "dcmt") == []
    assert "Paired with" not in report.render_markdown(rows)


def test_pairs_match_seed_and_data_seed_only():
    rows = _variant_rows()
    rows = [r for r in rows if not (r.get("label") == "cstwa-no-sm" and r["seed"] == 1)]
    groups = report.group_rows(rows)
    pairs = {p["group"]["model"]: p for p in report.paired_differences(groups, "esmm")}
    assert pairs["cstwa-no-sm"]["pairs"] == 2
    for row in rows:
        if row["model"] == "esmm":
            row["data_seed"] = 7
    pairs = report.paired_differences(report.group_rows(rows), "esmm")
    assert all(p["pairs"] == 0 for p in pairs)


def test_ddpo_reference_numbers_and_its_ablations():
    rows = [_row("ddpo", s, None, 0, 0, dataset="aliccp", aliccp=True, truth=False)
            for s in (0, 1)]
    table = _cells(report.render_markdown(rows))
    ddpo = next(c for c in table if c[:4] == [
        "DDPO (SIGIR'24) Table 3 [MED]", "cvr_auc_clicked", "MLP", "DDPO"])
    assert ddpo[4:] == ["0.6761", "ddpo", "0.7000 ± 0.0000"]
    ctcvr = {c[3]: c[4] for c in table if c[:2] == ["DDPO (SIGIR'24) Table 3 [MED]",
                                                     "ctcvr_auc"]}
    assert ctcvr == {"DDPO": "0.6487", "DDPO w/o ConvN": "0.6407",
                     "DDPO w/o CTM": "0.6403", "DDPO w/o DSL": "0.6480"}
    # An ablation is not the registered estimator.
    ablation = next(c for c in table if c[3] == "DDPO w/o CTM")
    assert ablation[5:] == ["-", "-"]
    # A variant row of an estimator is not compared with the paper's model.
    variant = [_row("ddpo", 0, None, 0, 0, dataset="aliccp", aliccp=True, truth=False,
                    label="ddpo-x", overrides={"causal_transfer": False})]
    table = _cells(report.render_markdown(variant))
    assert next(c for c in table if c[3] == "DDPO" and c[1] == "ctcvr_auc")[6] == "-"


def test_figures_draw_on_the_active_backend_and_close_nothing():
    import matplotlib.pyplot as plt

    backend = plt.get_backend()
    groups = report.group_rows(_rows())
    figures = [report.figure_metric_vs_bias(groups),
               report.figure_reliability(groups, "sim-bias0"),
               report.figure_bias_by_ctr_decile(groups, "sim-bias0"),
               report.figure_leaderboard(groups, "sim-bias0")]
    try:
        # A notebook's inline backend shows open figures: none may be
        # closed or the backend switched.
        assert plt.get_backend() == backend
        assert all(plt.fignum_exists(f.number) for f in figures)
        ax = figures[0].axes[1]
        assert ax.get_ylabel() == m.CVR_BIAS_UNCLICKED
        auc, bias = figures[3].axes
        labels = [t.get_text() for t in auc.get_yticklabels()]
        assert labels == ["naive", "esmm"]
        # naive at bias 0: mean of 0.60, 0.62, 0.64; esmm: its one ok run.
        widths = [p.get_width() for p in auc.patches]
        assert widths == pytest.approx([0.62, 0.70])
        assert bias.get_xlabel() == m.CVR_BIAS_UNCLICKED
    finally:
        for fig in figures:
            plt.close(fig)


def test_figures_are_none_without_data():
    groups = report.group_rows([_row("esmm", 0, 0.0, 0.6, 0.0, status="failed")])
    assert report.figure_metric_vs_bias(groups) is None
    assert report.figure_reliability(groups, "sim-bias0") is None
    assert report.figure_leaderboard(groups, "sim-bias0") is None
