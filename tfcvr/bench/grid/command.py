"""`tfcvr bench grid`: every estimator x seeds x datasets, one setting, a leaderboard.

    tfcvr bench grid                                          # the leaderboard
    tfcvr bench grid --preset smoke --out /tmp/smoke
    tfcvr bench grid --preset paper --out grid_paper          # a big machine
    tfcvr bench grid --models naive,esmm --seeds 3 --selection-bias 0,1,2 \\
        --datasets aliccp=/data/aliccp_tfrecords --out grid
    tfcvr bench grid --preset seed                            # CSTWA, ChorusCVR, DDPO + ablations
    tfcvr bench grid --models esmm,cstwa,@cstwa-ablation,cstwa-k20=cstwa:graph_num_neighbours=20

Simulated datasets (one per selection bias and data seed) are built once
under OUT/datasets/; each run trains and evaluates in a child process and
appends a row to OUT/results.jsonl; a rerun skips finished cells (same
config hash). OUT/report.md and OUT/plots/ are rewritten at the end.
Exit status 0 when every cell succeeded, 1 when some failed (the report
lists them), 2 on bad arguments.
"""

import argparse
import math
import os
import sys
import time

from tfcvr.bench.grid.config import ExternalDataset
from tfcvr.bench.grid.config import deep_merge
from tfcvr.bench.grid.model_variant import ModelVariant
from tfcvr.bench.grid.model_variant import split_top_level
from tfcvr.bench.grid.presets import MODEL_GROUPS
from tfcvr.bench.grid.presets import PRESETS
from tfcvr.bench.grid.presets import expand_group
from tfcvr.bench.grid.presets import preset_cell_timeout
from tfcvr.bench.grid.presets import preset_config
from tfcvr.bench.grid.presets import preset_jobs
from tfcvr.bench.grid.presets import preset_models
from tfcvr.bench.grid.report import PLOTS_DIR
from tfcvr.bench.grid.report import write_report
from tfcvr.bench.grid.runner import CELLS_DIR
from tfcvr.bench.grid.runner import RESULTS_FILE
from tfcvr.bench.grid.runner import STATUS_OK
from tfcvr.bench.grid.runner import GridRunner
from tfcvr.bench.grid.runner import ResultsStore
from tfcvr.bench.grid.runner import SubprocessRunner
from tfcvr.training.optimizer import OPTIMIZERS
from tfcvr.training.params import parse_params

DEFAULT_OUT = os.path.join("bench_output", "grid-{preset}")


def add_arguments(parser):
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS),
                        help="default: every estimator the simulator can feed, 3 seeds, "
                             "biases 0-2, 300k rows (~30 min on 2 cores); smoke: 3 "
                             "estimators, 2 seeds, 2 biases, 30k rows (CI, minutes); "
                             "seed: the default setting for naive, esmm, escm2_dr, dcmt, "
                             "cstwa, choruscvr, ddpo, @cstwa-ablation and @choruscvr-align; "
                             "paper: 5 seeds, biases 0-3, 1M rows")
    groups = "; ".join(f"@{name} = {', '.join(v.spec() for v in members)}"
                       for name, members in MODEL_GROUPS.items())
    parser.add_argument("--models", default=None,
                        help="comma-separated estimators, or 'all' (default: the preset's). "
                             "An entry is NAME, a variant LABEL=NAME:KEY=VALUE[:KEY=VALUE...] "
                             "(constructor overrides on top of the shared setting; JSON "
                             "values, dotted keys nest; its own report row and cells), or "
                             f"a group @GROUP ({groups})".replace("%", "%%"))
    parser.add_argument("--baseline", default=None,
                        help="row the report pairs every other row with, seed by seed on "
                             "the same data (default: esmm when in the grid, else the "
                             "first model)")
    parser.add_argument("--seeds", default=None,
                        help="N (seeds 0..N-1) or a comma-separated list of seeds")
    parser.add_argument("--selection-bias", default=None, dest="selection_bias",
                        help="comma-separated selection-bias strengths to simulate, "
                             "or 'none' for no simulated data")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated preprocessed dataset dirs (DIR or LABEL=DIR); "
                             "a label starting with 'aliccp' or an Ali-CCP reader format "
                             "in summary.json adds the papers' reference numbers")
    parser.add_argument("--rows", default=None, help="simulated impressions per dataset")
    parser.add_argument("--ctr", type=float, default=None, help="target CTR of the simulation")
    parser.add_argument("--cvr", type=float, default=None,
                        help="target CVR among clicks of the simulation")
    parser.add_argument("--num-users", type=int, default=None)
    parser.add_argument("--num-items", type=int, default=None)
    parser.add_argument("--cvr-noise", type=float, default=None,
                        help="std of the unobserved conversion shock the selection term "
                             "sees (simulator default 0.5); 0 makes selection ignorable "
                             "given the features, the IPW/DR estimators' assumption")
    parser.add_argument("--data-seed", default=None,
                        help="'per-run' (seed s trains on data simulated with seed s) or one "
                             "integer data seed shared by every run")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--embedding-dim", type=int, default=None)
    parser.add_argument("--backbone", default=None,
                        help="backbone of every estimator (towers, mmoe, ple, ...); a "
                             "different one than the preset's starts from its defaults")
    parser.add_argument("--precision", default=None,
                        choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                        help="as tfcvr train --optimizer (default adam)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator constructor argument for every estimator (JSON "
                             "value; dotted keys nest, e.g. backbone_config.hidden_units=[64,32])")
    parser.add_argument("--out", default=None, help="output directory (default bench_output/grid-PRESET)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds before a run is killed and recorded as failed "
                             "(default: 900 for smoke, 1800 for default, none for paper)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs at once (default: 2, 1 for paper); examples/s "
                             "are only comparable between runs made with the same --jobs")
    parser.add_argument("--no-retry-failed", action="store_true",
                        help="do not rerun cells whose last run failed")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the simulated raw CSV logs next to the datasets")
    parser.add_argument("--dry-run", action="store_true", help="print the cells and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the report from OUT/results.jsonl without running")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--tuned", action="store_true",
                        help="tune every estimator first (tfcvr tune on each dataset group's "
                             "first-seed data, selecting on held-out training rows), then run "
                             "each at its own setting")
    parser.add_argument("--tune-trials", type=int, default=6)
    parser.add_argument("--tune-max-epochs", type=int, default=3)
    parser.add_argument("--tune-objective", default=None,
                        help="held-out metric of the tuning (default val_ctcvr_auc)")
    parser.add_argument("--tune-space", action="append", default=[], metavar="AXIS=V1,V2,...",
                        help="values of one tuning axis (see tfcvr tune --space); repeatable")
    parser.add_argument("--tune-holdout-fraction", type=float, default=0.1)


def _defaults(args):
    """Fills flags missing from `args` (e.g. `tfcvr bench` without a suite)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    merged = vars(parser.parse_args([]))
    merged.update({k: v for k, v in vars(args).items() if k in merged})
    return argparse.Namespace(**merged)


def _split(text):
    return [part.strip() for part in str(text).split(",") if part.strip()]


def _parse_int(flag, text, low):
    cleaned = str(text).replace("_", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value) or value < low:
        raise ValueError(f"{flag} must be a whole number >= {low}. Received: {text!r}")
    return int(value)


def parse_seeds(text):
    """'3' -> (0, 1, 2); '0,5,7' -> (0, 5, 7)."""
    parts = _split(text)
    if len(parts) == 1 and "," not in str(text):
        return tuple(range(_parse_int("--seeds", parts[0], 1)))
    seeds = tuple(_parse_int("--seeds", p, 0) for p in parts)
    if not seeds:
        raise ValueError(f"--seeds needs N or a list of seeds. Received: {text!r}")
    return seeds


def parse_biases(text):
    if str(text).strip().lower() in ("none", ""):
        return ()
    out = []
    for part in _split(text):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"--selection-bias takes numbers >= 0 (or 'none'). Received: {part!r}")
        out.append(value)
    return tuple(dict.fromkeys(out))


def resolve_models(text, registered, defaults, arguments=None):
    """`--models`: None (the preset's `defaults`), 'all', or a list of
    names, variants (`LABEL=NAME:KEY=VALUE...`) and groups (`@GROUP`).

    A repeated identical entry counts once; one label with two meanings,
    an unknown estimator or (given `arguments`, estimator name -> its
    constructor argument names) an unknown override is a one-line
    ValueError.
    """
    models = defaults if text is None else ()
    if text is not None and text.strip().lower() == "all":
        return tuple(registered)
    if text is not None:
        entries = []
        for part in (p for p in split_top_level(text, ",") if p):
            if part.startswith("@"):
                entries.extend(expand_group(part[1:]))
            else:
                entries.append(ModelVariant.parse(part))
        models = tuple(entries)
        if not models:
            raise ValueError(f"--models names no estimator. Received: {text!r}")
    variants, unknown = {}, []
    for entry in models:
        variant = entry if isinstance(entry, ModelVariant) else ModelVariant.plain(entry)
        if variant.estimator not in registered:
            unknown.append(variant.label if variant.is_plain else
                           f"{variant.estimator} (in variant {variant.label})")
            continue
        if variant.label in registered and not variant.is_plain:
            raise ValueError(
                f"Variant label {variant.label!r} is the name of a registered estimator; "
                f"give the variant a label of its own.")
        if arguments is not None:
            variant.check(arguments)
        previous = variants.setdefault(variant.label, variant)
        if previous != variant:
            raise ValueError(
                f"--models: duplicate label {variant.label!r} "
                f"({previous.spec()} and {variant.spec()})")
    if unknown:
        raise ValueError(
            f"Unknown estimator(s) {', '.join(unknown)}. Registered: {', '.join(registered)}")
    return tuple(v.estimator if v.is_plain else v for v in variants.values())


def build_config(args, registered, backbones=None, arguments=None):
    """The `GridConfig` of the command line: the preset, then the flags.
    `arguments` (estimator name -> constructor argument names) checks the
    variants' overrides."""
    preset = PRESETS[args.preset]
    overrides = {"models": resolve_models(args.models, registered,
                                          preset_models(args.preset, registered),
                                          arguments)}
    if args.seeds is not None:
        overrides["seeds"] = parse_seeds(args.seeds)
    if args.selection_bias is not None:
        overrides["selection_biases"] = parse_biases(args.selection_bias)
    if args.datasets:
        overrides["datasets"] = tuple(ExternalDataset.from_path(p) for p in _split(args.datasets))
    if args.rows is not None:
        overrides["rows"] = _parse_int("--rows", args.rows, 100)
    for name in ("ctr", "cvr", "num_users", "num_items", "cvr_noise"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.data_seed is not None:
        overrides["data_seed"] = (None if args.data_seed.strip().lower() == "per-run"
                                  else _parse_int("--data-seed", args.data_seed, 0))
    train = preset["train"]
    changes = {}
    for name in ("epochs", "batch_size", "learning_rate", "embedding_dim", "precision",
                 "optimizer"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.backbone is not None and args.backbone != train.backbone:
        if backbones is not None and args.backbone not in backbones:
            raise ValueError(
                f"Unknown backbone {args.backbone!r}. Registered: {', '.join(backbones)}")
        changes["backbone"] = args.backbone
        changes["backbone_config"] = {}
    params = parse_params(args.param)
    for name in ("embedding_dim", "backbone"):
        if name in params:
            changes[name] = params.pop(name)
    if isinstance(params.get("backbone_config"), dict):
        changes["backbone_config"] = deep_merge(
            changes.get("backbone_config", train.backbone_config), params.pop("backbone_config"))
    changes["params"] = params
    overrides["train"] = train.replace(**changes)
    return preset_config(args.preset, registered, **overrides)


def resolve_baseline(text, labels):
    """`--baseline`: a row label of the grid; default esmm, else the first."""
    if text is None:
        return "esmm" if "esmm" in labels else (labels[0] if labels else None)
    if text not in labels:
        raise ValueError(
            f"--baseline {text!r} is not a row of the grid. Rows: {', '.join(labels)}")
    return text
def _tune(args, config, runner, jobs):
    from tfcvr.bench.grid.tuning import tune_grid
    from tfcvr.training.tuning import parse_space
    from tfcvr.training.monitor import DEFAULT_MONITOR

    if args.tune_trials < 1 or args.tune_max_epochs < 1:
        raise ValueError(f"--tune-trials and --tune-max-epochs must be >= 1. Received: "
                         f"{args.tune_trials}, {args.tune_max_epochs}")
    options = {"trials": args.tune_trials, "max_epochs": args.tune_max_epochs,
               "objective": args.tune_objective or DEFAULT_MONITOR,
               "space": parse_space(args.tune_space),
               "holdout_fraction": args.tune_holdout_fraction}

    def say(line):
        print(line, file=sys.stderr, flush=True)

    config, table = tune_grid(config, runner, options, jobs=jobs, say=say)
    print(table, flush=True)
    return config


def _print_plan(cells, pending):
    todo = {c.cell_id for c in pending}
    for cell in cells:
        mark = "run " if cell.cell_id in todo else "done"
        print(f"{mark} {cell.cell_id} {cell.describe()}")


def run(args):
    args = _defaults(args)
    started = time.perf_counter()
    out = os.path.abspath(args.out or DEFAULT_OUT.format(preset=args.preset))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} exists and is not a directory.")

    if args.report_only:
        store = ResultsStore(os.path.join(out, RESULTS_FILE))
        rows = list(store.latest().values())
        if not rows:
            raise ValueError(f"No results in {store.path}; run the grid first.")
        labels = list(dict.fromkeys(r.get("label") or r.get("model") for r in rows))
        written = write_report(rows, out, baseline=resolve_baseline(args.baseline, labels))
        print(written["tables"])
        print(f"\nreport: {written['report']} ({len(written['plots'])} plots)")
        return 0

    timeout = args.cell_timeout if args.cell_timeout is not None else preset_cell_timeout(
        args.preset)
    if timeout is not None and timeout <= 0:
        raise ValueError(f"--cell-timeout must be > 0. Received: {timeout}")
    jobs = args.jobs if args.jobs is not None else preset_jobs(args.preset)
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1. Received: {jobs}")
    executor = SubprocessRunner(timeout=timeout, keep_logs=args.keep_logs)
    print("listing the registered estimators ...", file=sys.stderr, flush=True)
    registry = executor.list_models(os.path.join(out, CELLS_DIR, "_list_models"))
    config = build_config(args, registry["models"], registry["backbones"],
                          registry.get("arguments"))
    baseline = resolve_baseline(args.baseline, config.labels)
    runner = GridRunner(config, out, executor=executor, progress=not args.no_progress,
                        retry_failed=not args.no_retry_failed, jobs=jobs)
    if args.tuned and not args.dry_run:
        config = _tune(args, config, runner, jobs)
        runner = GridRunner(config, out, executor=executor, progress=not args.no_progress,
                            retry_failed=not args.no_retry_failed, jobs=jobs)
    cells, pending = runner.plan()
    datasets = len(config.simulated_datasets()) + len(config.datasets)
    print(f"grid: {len(config.models)} estimators ({', '.join(config.labels)}) x "
          f"{len(config.seeds)} seeds x {datasets} datasets = {len(cells)} cells; "
          f"{len(cells) - len(pending)} finished, {len(pending)} to run ({jobs} at once); "
          f"out {out}",
          flush=True)
    if args.dry_run:
        _print_plan(cells, pending)
        return 0
    summary = runner.run()
    latest = runner.store.latest()
    rows = [latest[c.cell_id] for c in cells if c.cell_id in latest]
    written = write_report(rows, out, model_order=config.labels,
                           title=f"tfcvr estimator grid ({args.preset} preset)",
                           baseline=baseline)
    print()
    print(written["tables"])
    wall = time.perf_counter() - started
    print(f"\n{summary['ran']} cells run ({summary['ok']} ok, {summary['failed']} failed), "
          f"{summary['skipped']} already finished; wall {wall:.0f} s")
    print(f"results: {runner.results_path}\nreport:  {written['report']} "
          f"({len(written['plots'])} plots in {os.path.join(out, PLOTS_DIR)})")
    failed = [r for r in rows if r.get("status") != STATUS_OK]
    if failed:
        print(f"{len(failed)} cell(s) failed; see the report's 'Failed runs'.", file=sys.stderr)
        return 1
    return 0
