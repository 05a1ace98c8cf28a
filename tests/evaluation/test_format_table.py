import pytest

from tfcvr.evaluation import format_metrics_table
from tfcvr.evaluation import metric_names as m

RESULTS = {
    "esmm": {
        m.CTR_AUC: 0.61234,
        m.CVR_AUC_CLICKED: float("nan"),
        m.NUM_ROWS: 10,
    },
    "escm2_ipw": {m.CTR_AUC: 0.7, m.CTCVR_AUC: 0.655555, m.RELIABILITY: {}},
}


def test_markdown_table_is_aligned():
    table = format_metrics_table(RESULTS)
    lines = table.split("\n")
    assert lines == [
        "| model     | ctr_auc | cvr_auc_clicked | ctcvr_auc |",
        "| :-------- | ------: | --------------: | --------: |",
        "| esmm      |  0.6123 |             nan |         - |",
        "| escm2_ipw |  0.7000 |               - |    0.6556 |",
    ]
    assert len({len(line) for line in lines}) == 1


def test_plain_table_with_chosen_columns_and_precision():
    table = format_metrics_table(
        [("a", {m.CTR_AUC: 0.5, m.NUM_ROWS: 12345})],
        metrics=[m.NUM_ROWS, m.CTR_AUC],
        markdown=False,
        precision=2,
        model_header="estimator",
    )
    assert table.split("\n") == [
        "estimator  num_rows  ctr_auc",
        "---------  --------  -------",
        "a             12345     0.50",
    ]


def test_bad_arguments():
    with pytest.raises(ValueError, match="No result has"):
        format_metrics_table(RESULTS, metrics=["ctr_acu"])
    with pytest.raises(ValueError, match="not a number"):
        format_metrics_table(
            {"a": {m.CTR_AUC: 0.5}, "b": {m.CTR_AUC: "high"}},
            metrics=[m.CTR_AUC],
        )
    with pytest.raises(ValueError, match="precision"):
        format_metrics_table(RESULTS, precision=-1)
    with pytest.raises(ValueError, match="model names"):
        format_metrics_table([0.5])
