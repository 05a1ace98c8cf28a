"""Renders several models' metric dicts as one aligned comparison table."""

import math
import numbers

from tfcvr.evaluation import metric_names as m


def _rows(results):
    if hasattr(results, "items"):
        rows = list(results.items())
    else:
        rows = list(results)
    for row in rows:
        if not (
            isinstance(row, (tuple, list)) and len(row) == 2
        ) or not hasattr(row[1], "get"):
            raise ValueError(
                "`results` must map model names to metric dicts (or be a list "
                f"of (name, dict) pairs). Received an entry: {row!r:.80}"
            )
    return [(str(name), metrics) for name, metrics in rows]


def _is_scalar(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _cell(value, precision):
    if value is None:
        return "-"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.{precision}f}"


def format_metrics_table(
    results, metrics=None, markdown=True, precision=4, model_header="model"
):
    """One row per model, one column per metric, aligned as plain text.

    Args:
        results: dict of model name -> metric dict (e.g. `CVREvaluator`
            results), or a list of (name, dict) pairs; row order is kept.
        metrics: list of metric names for the columns, or None for the
            `metric_names.DEFAULT_TABLE_METRICS` present in any result.
        markdown: bool. A Markdown pipe table if True (which is also aligned
            as text), else space-separated columns. Defaults to True.
        precision: int. Decimals of float values. Defaults to 4.
        model_header: str. Header of the name column. Defaults to `"model"`.

    Returns:
        str without a trailing newline. Missing values show as `-`, NaN as
        `nan`, integers without decimals.
    """
    if (
        isinstance(precision, bool)
        or not isinstance(precision, int)
        or precision < 0
    ):
        raise ValueError(
            f"`precision` must be a non-negative integer. Received: "
            f"precision={precision!r}"
        )
    rows = _rows(results)
    present = {
        name
        for _, metrics_of in rows
        for name, v in metrics_of.items()
        if _is_scalar(v)
    }
    if metrics is None:
        columns = [name for name in m.DEFAULT_TABLE_METRICS if name in present]
    else:
        columns = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [name for name in columns if name not in present]
        if unknown:
            raise ValueError(
                f"No result has the metrics {unknown}. Available: "
                f"{sorted(present)}"
            )
    for name, metrics_of in rows:
        for column in columns:
            value = metrics_of.get(column)
            if value is not None and not _is_scalar(value):
                raise ValueError(
                    f"Metric `{column}` of `{name}` is not a number. Received: "
                    f"{type(value).__name__}"
                )

    header = [model_header] + columns
    body = [
        [name] + [_cell(metrics_of.get(c), precision) for c in columns]
        for name, metrics_of in rows
    ]
    # Markdown needs at least three characters for an aligned rule cell.
    widths = [
        max([3 if markdown else 1] + [len(line[i]) for line in [header] + body])
        for i in range(len(header))
    ]

    def render(cells):
        parts = [cells[0].ljust(widths[0])] + [
            cell.rjust(width)
            for cell, width in zip(cells[1:], widths[1:], strict=True)
        ]
        if markdown:
            return "| " + " | ".join(parts) + " |"
        return "  ".join(parts).rstrip()

    lines = [render(header)]
    if markdown:
        rule = [":" + "-" * (widths[0] - 1)]
        rule += ["-" * (w - 1) + ":" for w in widths[1:]]
        lines.append("| " + " | ".join(rule) + " |")
    else:
        lines.append("  ".join("-" * w for w in widths))
    lines.extend(render(cells) for cells in body)
    return "\n".join(lines)
