"""`OUT/report.md` and `OUT/plots/*.png` from the rows of `results.jsonl`.

Every table cell is the mean ± sample standard deviation (ddof = 1) over
the runs (seeds) of one estimator on one dataset with one setting. A run
whose metric is undefined (NaN, stored as null: e.g. no clicked conversion
in the eval split) is left out of that cell, which then shows `(k/n)`: k of
the n runs had a value. One run shows its value without a spread.
"""

import math
import os
import re
import statistics

from tfcvr.bench.grid.config import canonical_json
from tfcvr.bench.grid.paper_reference import ALICCP_REFERENCE
from tfcvr.bench.grid.runner import STATUS_OK
from tfcvr.evaluation import metric_names as m

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"

EXAMPLES_PER_SECOND = "examples_per_second"
PEAK_RSS_MB = "peak_rss_mb"
TRAIN_SECONDS = "train_seconds"

# (section title, only datasets with ground truth, ((metric, format), ...)).
# A format is (decimals, signed).
SECTIONS = (
    ("Against the simulator's ground truth (every eval row, clicked or not)", True, (
        (m.CVR_AUC_TRUE, (4, False)),
        (m.CVR_BIAS_UNCLICKED, (4, True)),
        (m.CVR_RMSE_TRUE, (4, False)),
    )),
    ("Ranking on the observed labels", False, (
        (m.CVR_AUC_CLICKED, (4, False)),
        (m.CVR_AUC_EXPOSURE, (4, False)),
        (m.CTCVR_AUC, (4, False)),
        (m.CTR_AUC, (4, False)),
    )),
    ("Calibration (PCOC = mean prediction / observed rate; ECE over 10 equal-mass bins)",
     False, (
        (m.CVR_PCOC_CLICKED, (3, False)),
        (m.CVR_ECE_CLICKED, (4, False)),
        (m.CTCVR_PCOC, (3, False)),
        (m.CTCVR_ECE, (5, False)),
    )),
    ("Cost (training examples/s at steady state, peak RSS of the run's process)", False, (
        (EXAMPLES_PER_SECOND, (0, False)),
        (PEAK_RSS_MB, (0, False)),
        (TRAIN_SECONDS, (1, False)),
    )),
)
COLUMN_TITLES = {
    EXAMPLES_PER_SECOND: "examples/s",
    PEAK_RSS_MB: "peak RSS (MiB)",
    TRAIN_SECONDS: "train s",
}
REPORT_METRICS = tuple(name for _, _, metrics in SECTIONS for name, _ in metrics)
RELIABILITY_CURVES = (
    (m.RELIABILITY_CVR_CLICKED, "pCVR on clicked rows", "observed CVR"),
    (m.RELIABILITY_CTCVR, "pCTCVR on all rows", "observed CTCVR"),
    (m.RELIABILITY_CVR_UNCLICKED_TRUE, "pCVR on unclicked rows", "true CVR (simulator)"),
)
_ROW_FIELDS = (EXAMPLES_PER_SECOND, PEAK_RSS_MB, TRAIN_SECONDS)
# The paired comparison with the baseline row: differences of these metrics
# (the truth ones on simulated data only) and the ratio of training time.
PAIRED_METRICS = (
    (m.CVR_AUC_TRUE, True),
    (m.CVR_AUC_CLICKED, False),
    (m.CTCVR_AUC, False),
    (m.CVR_BIAS_UNCLICKED, True),
)


# === Numbers ===


def _is_number(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def mean_std(values):
    """`{"mean", "std", "n", "total"}` over the finite numbers of `values`.

    `std` is the sample standard deviation (ddof = 1), None for fewer than
    two values; `mean` is None when no value is finite.
    """
    finite = [float(v) for v in values if _is_number(v)]
    n = len(finite)
    return {
        "mean": math.fsum(finite) / n if n else None,
        "std": statistics.stdev(finite) if n > 1 else None,
        "n": n,
        "total": len(values),
    }


def format_mean_std(stats, decimals=4, signed=False):
    """`"0.6512 ± 0.0040"`, with `(k/n)` when some runs had no value."""
    if stats["total"] == 0:
        return "-"
    if stats["n"] == 0:
        return "n/a"
    sign = "+" if signed else ""
    text = f"{stats['mean']:{sign},.{decimals}f}"
    if stats["std"] is not None:
        text += f" ± {stats['std']:,.{decimals}f}"
    if stats["n"] < stats["total"]:
        text += f" ({stats['n']}/{stats['total']})"
    return text


def metric_value(row, name):
    """A metric of a result row: from `metrics`, or a top-level field."""
    if name in _ROW_FIELDS:
        return row.get(name)
    return (row.get("metrics") or {}).get(name)


# === Grouping ===


def _dataset_sort_key(group):
    bias = group["selection_bias"]
    return (0 if bias is not None else 1, bias if bias is not None else 0.0,
            group["dataset"])


def group_rows(rows, model_order=None):
    """Groups result rows into report rows (one estimator x dataset x setting).

    Args:
        rows: result rows, one per cell (the latest of each).
        model_order: list of estimator names giving the row order; others
            follow in order of appearance.

    Returns:
        list of dicts: `dataset`, `model` (the row's variant label: the
        estimator name for a plain estimator), `estimator`, `label` (the
        model, with the setting's id when one dataset has two settings of
        it), `train_key` (the training setting, canonical JSON),
        `selection_bias`, `aliccp`, `has_ground_truth`, `group_id`,
        `backbone`, `ok` (rows), `failed` (rows), `stats` (metric ->
        `mean_std`).
    """
    groups = {}
    for row in rows:
        gid = row.get("group_id") or row["cell_id"]
        group = groups.get(gid)
        if group is None:
            train = (row.get("config") or {}).get("train") or {}
            group = groups[gid] = {
                "group_id": gid,
                "dataset": row.get("dataset", "?"),
                "model": row.get("label") or row.get("model", "?"),
                "estimator": row.get("model", "?"),
                "train_key": canonical_json(train),
                "selection_bias": row.get("selection_bias"),
                "aliccp": bool(row.get("aliccp")),
                "has_ground_truth": bool(row.get("has_ground_truth")),
                "backbone": train.get("backbone"),
                "ok": [],
                "failed": [],
            }
        group["ok" if row.get("status") == STATUS_OK else "failed"].append(row)
    order = list(model_order or [])
    for group in groups.values():
        if group["model"] not in order:
            order.append(group["model"])
    out = sorted(groups.values(), key=lambda g: (_dataset_sort_key(g), order.index(g["model"])))
    seen = {}
    for group in out:
        seen.setdefault((group["dataset"], group["model"]), []).append(group)
    for group in out:
        twins = seen[(group["dataset"], group["model"])]
        group["label"] = group["model"] + (
            f" [{group['group_id'][:6]}]" if len(twins) > 1 else "")
        runs = group["ok"] + group["failed"]
        group["stats"] = {
            name: mean_std([metric_value(r, name) for r in group["ok"]])
            for name in REPORT_METRICS
        }
        # A failed run counts in n, so "(1/2)" also flags a failed seed.
        for stats in group["stats"].values():
            stats["total"] = len(runs) if group["ok"] else stats["total"]
    return out


# === Markdown ===


def markdown_table(header, body):
    """A pipe table; first column left-aligned, the others right-aligned."""
    widths = [max([3] + [len(str(line[i])) for line in [header] + body])
              for i in range(len(header))]

    def render(cells):
        parts = [str(cells[0]).ljust(widths[0])] + [
            str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    rule = [":" + "-" * (widths[0] - 1)] + ["-" * (w - 1) + ":" for w in widths[1:]]
    return "\n".join([render(header), "| " + " | ".join(rule) + " |"]
                     + [render(line) for line in body])


def section_tables(groups):
    """The metric tables as Markdown (also what the CLI prints)."""
    parts = []
    for title, truth_only, metrics in SECTIONS:
        chosen = [g for g in groups if g["has_ground_truth"] or not truth_only]
        if not chosen:
            continue
        header = ["dataset", "estimator", "runs"] + [
            COLUMN_TITLES.get(name, name) for name, _ in metrics]
        body = []
        for g in chosen:
            runs = len(g["ok"]) + len(g["failed"])
            cells = [g["dataset"], g["label"], f"{len(g['ok'])}/{runs}"]
            for name, (decimals, signed) in metrics:
                cells.append(format_mean_std(g["stats"][name], decimals, signed)
                             if g["ok"] else "failed")
            body.append(cells)
        parts.append(f"### {title}\n\n" + markdown_table(header, body))
    return "\n\n".join(parts)


def _pair_key(row):
    return (row.get("seed"), row.get("data_seed"))


def paired_differences(groups, baseline):
    """Every row against the `baseline` row of its dataset and setting,
    seed by seed on the same data.

    Returns:
        list of dicts: `group`, `pairs` (seeds matched), `diffs` (metric ->
        `mean_std` of row - baseline per seed; None where the dataset has
        no ground truth for that metric) and `train_ratio` (`mean_std` of
        row / baseline training seconds per seed).
    """
    bases = {(g["dataset"], g["train_key"]): g for g in groups
             if g["model"] == baseline and g["ok"]}
    out = []
    for g in groups:
        base = bases.get((g["dataset"], g["train_key"]))
        if base is None or base is g or not g["ok"]:
            continue
        mine = {_pair_key(r): r for r in g["ok"]}
        theirs = {_pair_key(r): r for r in base["ok"]}
        keys = [k for k in mine if k in theirs]
        diffs = {}
        for name, truth_only in PAIRED_METRICS:
            if truth_only and not g["has_ground_truth"]:
                diffs[name] = None
                continue
            values = []
            for k in keys:
                a, b = metric_value(mine[k], name), metric_value(theirs[k], name)
                values.append(a - b if _is_number(a) and _is_number(b) else None)
            diffs[name] = mean_std(values)
        ratios = []
        for k in keys:
            a, b = metric_value(mine[k], TRAIN_SECONDS), metric_value(theirs[k], TRAIN_SECONDS)
            ratios.append(a / b if _is_number(a) and _is_number(b) and b > 0 else None)
        out.append({"group": g, "pairs": len(keys), "diffs": diffs,
                    "train_ratio": mean_std(ratios)})
    return out


def paired_table(groups, baseline):
    """The paired differences with `baseline` as Markdown ("" if none)."""
    pairs = paired_differences(groups, baseline)
    if not pairs:
        return ""
    header = ["dataset", "estimator", "pairs"] + [
        f"Δ {name}" for name, _ in PAIRED_METRICS] + ["train s ratio"]
    body = []
    for p in pairs:
        cells = [p["group"]["dataset"], p["group"]["label"], str(p["pairs"])]
        for name, _ in PAIRED_METRICS:
            stats = p["diffs"][name]
            cells.append("-" if stats is None else format_mean_std(stats, 4, True))
        cells.append(format_mean_std(p["train_ratio"], 2))
        body.append(cells)
    return (f"### Paired with `{baseline}` (mean ± std over seeds of the per-seed "
            f"difference on the same data; training time as a ratio)\n\n"
            + markdown_table(header, body))


def _settings_lines(rows):
    lines = []
    trains = {}
    for row in rows:
        train = (row.get("config") or {}).get("train")
        if train is not None:
            trains.setdefault(repr(sorted(train.items())), train)
    for train in trains.values():
        lines.append(
            f"- training: {train.get('epochs')} epoch(s), batch {train.get('batch_size')}, "
            f"{train.get('optimizer', 'adam')} lr {train.get('learning_rate')}, embedding {train.get('embedding_dim')}, "
            f"backbone `{train.get('backbone')}` {train.get('backbone_config') or {}}, "
            f"precision {train.get('precision')}"
            + (f", params {train.get('params')}" if train.get("params") else "")
        )
    datasets = {}
    for row in rows:
        d = (row.get("config") or {}).get("dataset") or {}
        if d.get("kind") == "simulated":
            key = (row.get("dataset"),)
            entry = datasets.setdefault(key, {"seeds": set(), "d": d})
            entry["seeds"].add(d.get("seed"))
        elif d:
            datasets.setdefault((row.get("dataset"),), {"seeds": None, "d": d})
    for (label,), entry in datasets.items():
        d = entry["d"]
        if entry["seeds"] is not None:
            lines.append(
                f"- dataset `{label}`: simulated, selection_bias {d.get('selection_bias')}, "
                f"{d.get('rows'):,} rows (last 10% by time = eval), target CTR "
                f"{d.get('ctr')}, CVR among clicks {d.get('cvr')}, users "
                f"{d.get('num_users') or 'default'}, items {d.get('num_items') or 'default'}, "
                + (f"cvr_noise {d['cvr_noise']} (selection ignorable given the features "
                   f"when 0), " if d.get("cvr_noise") is not None else "")
                + f"data seeds {sorted(entry['seeds'])}"
            )
        else:
            lines.append(
                f"- dataset `{label}`: {d.get('path')}"
                + (" (Ali-CCP)" if d.get("aliccp") else "")
            )
    versions = {}
    for row in rows:
        v = row.get("versions") or {}
        text = ", ".join(f"{k} {v.get(k)}" for k in ("tfcvr", "keras", "tensorflow", "backend")
                         if k in v)
        versions[text] = versions.get(text, 0) + 1
    for text, count in versions.items():
        lines.append(f"- versions ({count} runs): {text}")
    jobs = sorted({row.get("jobs") or 1 for row in rows})
    if jobs != [1]:
        lines.append(f"- runs at once (--jobs): {', '.join(map(str, jobs))}; with more than "
                     "one, runs shared the CPU, so examples/s compare only within one value")
    hosts = sorted({row.get("host") for row in rows if row.get("host")})
    if hosts:
        lines.append(f"- host(s): {', '.join(hosts)}")
    return lines


def _reference_section(groups):
    aliccp = sorted({g["dataset"] for g in groups if g["aliccp"]})
    if not aliccp:
        return ""
    parts = [
        "## Paper reference numbers (Ali-CCP)\n",
        "Each published number sits under the tfcvr metric whose protocol it "
        "used; numbers of different metrics are not comparable. ESMM's Table 2 "
        "multiplied the baselines' pCVR by an independently trained CTR model "
        "for CTCVR AUC; tfcvr uses each model's own pCTR. NISE and IdeFN "
        "trained on torch-rechub's Ali-CCP CSV (validation on the training "
        "set). \"this grid\" is filled where the paper's model is a "
        "registered tfcvr estimator of this grid and its network is the "
        "grid's backbone; run-to-run noise on Ali-CCP is about ±0.003-0.012.",
    ]
    for dataset in aliccp:
        # Variant rows are not the paper's model.
        mine = {g["model"]: g for g in groups
                if g["dataset"] == dataset and g["ok"] and g["model"] == g["estimator"]}
        body = []
        for ref in ALICCP_REFERENCE:
            value = f"{ref['value']:.4f}" + (f" ± {ref['std']:.4f}" if ref["std"] else "")
            ours = "-"
            group = mine.get(ref["estimator"])
            if group is not None and ref["backbone"] == group["backbone"]:
                ours = format_mean_std(
                    mean_std([metric_value(r, ref["metric"]) for r in group["ok"]]), 4)
            body.append([ref["source"] + ("" if ref["confidence"] == "HIGH"
                                          else f" [{ref['confidence']}]"),
                         ref["metric"], ref["network"], ref["model"], value,
                         ref["estimator"] or "-", ours])
        parts.append(f"\n### `{dataset}`\n\n" + markdown_table(
            ["source", "tfcvr metric", "network", "paper model", "paper",
             "tfcvr estimator", "this grid"], body))
    return "\n".join(parts)


def render_markdown(rows, plots=(), model_order=None, title="tfcvr estimator grid",
                    notes=(), baseline=None):
    """The report as Markdown.

    Args:
        rows: the result rows to report (latest per cell).
        plots: paths of PNGs relative to the report.
        model_order: row labels (estimators and variants) in row order.
        title: str. First heading.
        notes: extra lines under the heading.
        baseline: str or None. Row label the paired table compares with.
    """
    groups = group_rows(rows, model_order)
    ok = sum(1 for r in rows if r.get("status") == STATUS_OK)
    parts = [
        f"# {title}\n",
        f"{len(rows)} runs ({ok} ok, {len(rows) - ok} failed), "
        f"{len(groups)} estimator x dataset rows. Values are mean ± sample "
        "std (ddof = 1) over seeds; `(k/n)` marks a metric that only k of n "
        "runs define (or a failed run). Metric definitions and how to read "
        "them: `docs/leaderboard.md` in the tfcvr repository.",
    ]
    parts.extend(notes)
    parts.append("\n## Setting\n\n" + "\n".join(_settings_lines(rows)))
    if groups:
        parts.append("\n## Results\n\n" + section_tables(groups))
        paired = paired_table(groups, baseline) if baseline else ""
        if paired:
            parts.append("\n" + paired)
    if plots:
        lines = ["\n## Plots\n"]
        for path in plots:
            name = os.path.splitext(os.path.basename(path))[0]
            lines.append(f"![{name}]({path})")
        parts.append("\n\n".join(lines))
    reference = _reference_section(groups)
    if reference:
        parts.append("\n" + reference)
    failed = [r for r in rows if r.get("status") != STATUS_OK]
    if failed:
        body = [[r.get("label") or r.get("model"), r.get("seed"), r.get("dataset"), r.get("cell_id"),
                 (r.get("error") or "").replace("|", "/")[:300]] for r in failed]
        parts.append("\n## Failed runs\n\n" + markdown_table(
            ["estimator", "seed", "dataset", "cell", "error"], body)
            + "\n\nLogs: `OUT/cells/<cell>/log.txt`. Failed cells are retried on the next run.")
    return "\n".join(parts) + "\n"


# === Plots ===


def _safe_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "dataset"


def _pyplot(files=False):
    # Imported when a plot is drawn, not with this module (`tfcvr bench grid
    # --dry-run` must not pay the matplotlib import). Plots written to files
    # select the Agg backend, which is global, so not where a notebook shows
    # figures inline: the figure_* functions draw on the active backend.
    import matplotlib

    if files and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _colors(plt):
    # 20 distinct colours: the zoo has more estimators than the default 10.
    return plt.get_cmap("tab20").colors


def _subplots(plt, *args, **kwargs):
    import matplotlib

    with plt.rc_context({"axes.prop_cycle": matplotlib.cycler(color=_colors(plt))}):
        return plt.subplots(*args, **kwargs)


def _write(figure, path, *args):
    """`figure(*args)` saved to `path` and closed; None if it had no data."""
    plt = _pyplot(files=True)
    fig = figure(*args)
    if fig is None:
        return None
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def figure_metric_vs_bias(groups):
    """cvr_auc_true and cvr_bias_unclicked (mean ± std) against the
    selection-bias strength, one line per estimator (a point for an
    estimator run at one strength). A `Figure`, None if no data."""
    sim = [g for g in groups if g["selection_bias"] is not None and g["ok"]
           and g["has_ground_truth"]]
    if not sim:
        return None
    plt = _pyplot()
    fig, axes = _subplots(plt, 1, 2, figsize=(11, 4.2))
    lines = {}
    for g in sim:
        lines.setdefault(g["label"], []).append(g)
    for label, members in lines.items():
        members.sort(key=lambda g: g["selection_bias"])
        for ax, name in zip(axes, (m.CVR_AUC_TRUE, m.CVR_BIAS_UNCLICKED)):
            xs, ys, es = [], [], []
            for g in members:
                stats = g["stats"][name]
                if stats["mean"] is None:
                    continue
                xs.append(g["selection_bias"])
                ys.append(stats["mean"])
                es.append(stats["std"] or 0.0)
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
    axes[0].set_title("CVR AUC against the true conversion, all rows")
    axes[0].set_ylabel(m.CVR_AUC_TRUE)
    axes[1].set_title("pCVR - true CVR, unclicked rows")
    axes[1].set_ylabel(m.CVR_BIAS_UNCLICKED)
    axes[1].axhline(0.0, color="gray", linewidth=0.8)
    biases = sorted({g["selection_bias"] for g in sim})
    for ax in axes:
        ax.set_xlabel("selection bias strength")
        ax.set_xticks(biases)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Mean ± std over seeds")
    fig.tight_layout()
    return fig


def plot_metric_vs_bias(groups, path):
    """`figure_metric_vs_bias` written to `path`; None if no data."""
    return _write(figure_metric_vs_bias, path, groups)


def figure_reliability(groups, dataset):
    """Reliability curves (one line per estimator and seed) of one dataset,
    as a `Figure`; None if no run has one."""
    members = [g for g in groups if g["dataset"] == dataset and g["ok"]]
    curves = [(key, x, y) for key, x, y in RELIABILITY_CURVES if any(
        ((r.get("metrics") or {}).get(m.RELIABILITY) or {}).get(key)
        for g in members for r in g["ok"])]
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = _subplots(plt, 1, len(curves), figsize=(4.6 * len(curves), 4.2),
                          squeeze=False)
    colors = _colors(plt)
    for ax, (key, xlabel, ylabel) in zip(axes[0], curves):
        top = 0.0
        for i, g in enumerate(members):
            color = colors[i % len(colors)]
            for j, row in enumerate(g["ok"]):
                curve = ((row.get("metrics") or {}).get(m.RELIABILITY) or {}).get(key)
                if not curve or not curve.get("mean_prediction"):
                    continue
                xs = [v if _is_number(v) else math.nan for v in curve["mean_prediction"]]
                ys = [v if _is_number(v) else math.nan for v in curve["observed_rate"]]
                top = max([top] + [v for v in xs + ys if _is_number(v)])
                ax.plot(xs, ys, marker="o", markersize=3, color=color, alpha=0.8,
                        label=g["label"] if j == 0 else None)
        top = top * 1.05 or 1.0
        ax.plot([0, top], [0, top], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel(f"mean {xlabel} (equal-mass bin)")
        ax.set_ylabel(ylabel)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Reliability on {dataset} (one line per seed)")
    fig.tight_layout()
    return fig


def plot_reliability(groups, dataset, path):
    """`figure_reliability` written to `path`; None if no data."""
    return _write(figure_reliability, path, groups, dataset)


def figure_bias_by_ctr_decile(groups, dataset):
    """pCVR - true CVR on unclicked rows per pCTR decile, mean ± std, as a
    `Figure`; None if no run has it."""
    members = [g for g in groups if g["dataset"] == dataset and g["ok"]]
    series = []
    for g in members:
        runs = [((r.get("metrics") or {}).get(m.CVR_BIAS_BY_CTR_BIN_UNCLICKED) or {}).get("bias")
                for r in g["ok"]]
        runs = [[v if _is_number(v) else math.nan for v in b] for b in runs if b]
        if runs:
            series.append((g["label"], runs))
    if not series:
        return None
    plt = _pyplot()
    fig, ax = _subplots(plt, figsize=(7.5, 4.5))
    for label, runs in series:
        if len({len(b) for b in runs}) == 1:
            xs = list(range(1, len(runs[0]) + 1))
            stats = [mean_std([b[k] for b in runs]) for k in range(len(xs))]
            ys = [s["mean"] if s["mean"] is not None else math.nan for s in stats]
            es = [s["std"] or 0.0 for s in stats]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
        else:
            for j, b in enumerate(runs):
                ax.plot(range(1, len(b) + 1), b, marker="o", alpha=0.7,
                        label=label if j == 0 else None)
    ax.axhline(0.0, color="gray", linewidth=0.8)
    ax.set_xlabel("pCTR bin of the unclicked rows (equal mass, 1 = lowest pCTR)")
    ax.set_ylabel("mean pCVR - mean true CVR")
    ax.set_title(f"pCVR bias on unclicked rows by pCTR decile, {dataset}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_bias_by_ctr_decile(groups, dataset, path):
    """`figure_bias_by_ctr_decile` written to `path`; None if no data."""
    return _write(figure_bias_by_ctr_decile, path, groups, dataset)


def write_plots(groups, plots_dir):
    """Writes every plot the groups have data for; returns their paths."""
    os.makedirs(plots_dir, exist_ok=True)
    paths = [plot_metric_vs_bias(groups, os.path.join(plots_dir, "metric_vs_bias.png"))]
    for dataset in dict.fromkeys(g["dataset"] for g in groups):
        name = _safe_name(dataset)
        paths.append(plot_reliability(
            groups, dataset, os.path.join(plots_dir, f"reliability_{name}.png")))
        paths.append(plot_bias_by_ctr_decile(
            groups, dataset, os.path.join(plots_dir, f"cvr_bias_by_ctr_decile_{name}.png")))
    return [p for p in paths if p is not None]


def write_report(rows, out_dir, model_order=None, title="tfcvr estimator grid", notes=(),
                 baseline=None):
    """Writes `out_dir/report.md` and `out_dir/plots/*.png` (with a table
    of paired differences with row `baseline` when given).

    Returns:
        dict: `report` (path), `plots` (paths), `tables` (the metric tables
        as Markdown), `groups`.
    """
    groups = group_rows(rows, model_order)
    plots = write_plots(groups, os.path.join(out_dir, PLOTS_DIR))
    relative = [os.path.relpath(p, out_dir) for p in plots]
    text = render_markdown(rows, relative, model_order, title, notes, baseline)
    path = os.path.join(out_dir, REPORT_FILE)
    with open(path, "w") as f:
        f.write(text)
    return {"report": path, "plots": plots, "tables": section_tables(groups),
            "groups": groups}


def figure_leaderboard(groups, dataset, metrics=(m.CVR_AUC_TRUE, m.CVR_BIAS_UNCLICKED)):
    """The leaderboard of one dataset as horizontal bars, one panel per
    metric: the mean over seeds with the sample std as error bar (none for
    a single seed). A `Figure`; None if no estimator has a value."""
    members = [g for g in groups if g["dataset"] == dataset and g["ok"]]
    members = [g for g in members if any(g["stats"][name]["mean"] is not None
                                         for name in metrics)]
    if not members:
        return None
    plt = _pyplot()
    fig, axes = _subplots(plt, 1, len(metrics), figsize=(4.6 * len(metrics),
                                                         0.9 + 0.32 * len(members)),
                          squeeze=False)
    labels = [g["label"] for g in members]
    for ax, name in zip(axes[0], metrics):
        stats = [g["stats"][name] for g in members]
        means = [s["mean"] if s["mean"] is not None else math.nan for s in stats]
        errors = [s["std"] or 0.0 for s in stats]
        ax.barh(range(len(members)), means, xerr=errors, capsize=3,
                color=_colors(plt)[0])
        ax.set_yticks(range(len(members)))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_xlabel(name)
        if name == m.CVR_BIAS_UNCLICKED:
            ax.axvline(0.0, color="gray", linewidth=0.8)
        else:
            finite = [v for v in means if _is_number(v)]
            if finite:
                spread = max(finite) - min(finite)
                ax.set_xlim(min(finite) - spread - 0.01, max(finite) + spread + 0.01)
        ax.grid(alpha=0.3, axis="x")
    runs = sorted({len(g["ok"]) for g in members})
    fig.suptitle(f"{dataset}: mean ± std over {'/'.join(map(str, runs))} run(s)")
    fig.tight_layout()
    return fig
