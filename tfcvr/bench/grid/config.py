"""What a grid is: its datasets, training settings, cells and the grid itself.

Frozen dataclasses whose `to_dict` is canonical JSON, so that a config's
identity (`GridCell.cell_id`, the key of a finished cell in
`results.jsonl`) does not depend on dict order, float spelling or
tuple-vs-list.
"""

import copy
import dataclasses
import hashlib
import json
import math
import os

from tfcvr.bench.grid.model_variant import ModelVariant
from tfcvr.features import keys
from tfcvr.training.optimizer import OPTIMIZERS

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Bumped when a change of the grid code changes what a cell measures, so old
# results are not taken for new ones.
CELL_FORMAT = 1
# Reader formats (beam_jobs.readers.FORMATS) whose output is Ali-CCP.
ALICCP_FORMATS = ("aliccp", "aliccp_csv", "paddlerec")
ALICCP_LABEL_PREFIXES = ("aliccp", "ali-ccp", "ali_ccp")


# === Canonical JSON ===


def normalize(value):
    """A JSON-ready copy: tuples become lists, -0.0 becomes 0.0."""
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Configs must hold finite numbers. Received: {value!r}")
        # 1.0 and 1 name the same setting, so they must hash the same.
        return int(value) if value.is_integer() else value + 0.0
    raise ValueError(
        f"Configs hold only JSON values. Received: {type(value).__name__} "
        f"{value!r:.60}"
    )


def canonical_json(value):
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"))


def short_hash(value, length=16):
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def deep_merge(base, override):
    """`base` updated by `override`, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# === Validation ===


def check_int(name, value, low, optional=False):
    """Raises unless `value` is an int (not a bool) >= `low` (or None, if
    `optional`)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(
            f"{name} must be {'None or ' if optional else ''}an integer >= {low}. "
            f"Received: {name}={value!r}"
        )


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _check_rate(name, value):
    if not _is_number(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1. Received: {name}={value!r}")


def _check_finite_non_negative(name, value, optional=False):
    if optional and value is None:
        return
    if not _is_number(value) or not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{name} must be {'None or ' if optional else ''}a finite number >= 0. "
            f"Received: {name}={value!r}"
        )


def _check_type(name, value, kinds):
    if not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{name} must be a {expected}. Received: {type(value).__name__}")


def _tuple(name, value, kind):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence. Received: {name}={value!r}")
    value = tuple(value)
    for item in value:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise ValueError(
                f"{name} must hold {getattr(kind, '__name__', kind)} values. "
                f"Received: {name}={value!r}"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"{name} has duplicates. Received: {name}={value!r}")
    return value


# === Datasets ===


@dataclasses.dataclass(frozen=True)
class SimulatedDataset:
    """One simulated + preprocessed dataset of the grid.

    `tfcvr.simulation.simulate` writes `rows` impressions with selection bias of
    strength `selection_bias` (weight of the standardised conversion logit in
    the click logit; 0 is missing at random) from `seed`; the Beam job turns
    them into a dataset directory (last 10% by time = eval split). The
    ground truth (`true_cvr`, `conversion_if_clicked`) rides along, so the
    grid reports `cvr_auc_true`, `cvr_bias_unclicked` and `cvr_rmse_true`.

    Args:
        selection_bias: float >= 0.
        seed: int >= 0. Simulation seed.
        rows: int >= 100. Impressions.
        ctr: float in (0, 1). Target CTR. Defaults to 0.04.
        cvr: float in (0, 1). Target CVR among clicks. Defaults to 0.05.
        num_users: int or None. Simulated users (None: simulator default).
        num_items: int or None. Simulated items (None: simulator default).
        cvr_noise: float or None. Standard deviation of the unobserved
            per-impression shock of the conversion logit (None: simulator
            default 0.5). The selection term sees it, so > 0 makes selection
            non-ignorable given the features; 0 makes it ignorable, the
            assumption of the IPW/DR estimators.
    """

    selection_bias: float
    seed: int = 0
    rows: int = 30_000
    ctr: float = 0.04
    cvr: float = 0.05
    num_users: int | None = None
    num_items: int | None = None
    cvr_noise: float | None = None

    def __post_init__(self):
        _check_finite_non_negative("selection_bias", self.selection_bias)
        check_int("seed", self.seed, 0)
        check_int("rows", self.rows, 100)
        _check_rate("ctr", self.ctr)
        _check_rate("cvr", self.cvr)
        for name in ("num_users", "num_items"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        _check_finite_non_negative("cvr_noise", self.cvr_noise, optional=True)

    kind = "simulated"
    has_ground_truth = True
    aliccp = False

    @property
    def label(self):
        """Name shared by every data seed of this setting (a report row)."""
        noise = "" if self.cvr_noise is None else f"-cvrnoise{self.cvr_noise:g}"
        return f"sim-bias{self.selection_bias:g}{noise}"

    @property
    def key(self):
        return short_hash(self.to_dict(), 12)

    @property
    def dir_name(self):
        return f"{self.label}-seed{self.seed}-{self.key}"

    def to_dict(self):
        config = {"kind": self.kind, **dataclasses.asdict(self)}
        if self.cvr_noise is None:
            # Datasets from before the option keep their keys.
            del config["cvr_noise"]
        return config

    @classmethod
    def from_dict(cls, config):
        return cls(**{k: v for k, v in config.items() if k != "kind"})


def _fingerprint(path):
    digest = hashlib.sha256()
    for name in (keys.SCHEMA_FILE, keys.SUMMARY_FILE):
        file = os.path.join(path, name)
        if os.path.exists(file):
            with open(file, "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def _reader_format(path):
    file = os.path.join(path, keys.SUMMARY_FILE)
    if not os.path.exists(file):
        return None
    try:
        with open(file) as f:
            return json.load(f).get("format")
    except (OSError, ValueError, AttributeError):
        return None


@dataclasses.dataclass(frozen=True)
class ExternalDataset:
    """A preprocessed dataset directory given to the grid (`--datasets`).

    Its identity in the cell hash is the absolute path plus a fingerprint of
    `schema.json` and `summary.json`, so preprocessing it again reruns its
    cells. It is marked Ali-CCP (and the report adds the papers' reference
    numbers) when `summary.json` names an Ali-CCP reader format or the
    label starts with "aliccp".

    Args:
        path: str. Absolute path of the dataset directory.
        label: str. Name in the report.
        fingerprint: str. Hash of schema.json and summary.json.
        aliccp: bool. Whether the data is Ali-CCP.
        has_ground_truth: bool. Whether rows carry the simulator's truth.
    """

    path: str
    label: str
    fingerprint: str = ""
    aliccp: bool = False
    has_ground_truth: bool = False

    def __post_init__(self):
        if not isinstance(self.path, str) or not os.path.isabs(self.path):
            raise ValueError(
                f"path must be an absolute path. Received: path={self.path!r}"
            )
        if not isinstance(self.label, str) or not self.label or "/" in self.label:
            raise ValueError(
                f"label must be a non-empty name without '/'. Received: "
                f"label={self.label!r}"
            )

    kind = "external"
    selection_bias = None
    seed = None

    @classmethod
    def from_path(cls, spec):
        """`DIR` or `LABEL=DIR` -> ExternalDataset; one-line error if bad."""
        label, sep, path = str(spec).partition("=")
        if not sep:
            label, path = "", label
        path = os.path.abspath(os.path.expanduser(path.strip()))
        if not os.path.isdir(path):
            raise ValueError(f"--datasets: no such directory: {path}")
        if not os.path.exists(os.path.join(path, keys.SCHEMA_FILE)):
            raise ValueError(
                f"--datasets: {path} has no {keys.SCHEMA_FILE}; give a "
                f"directory written by `tfcvr preprocess`."
            )
        label = label.strip() or os.path.basename(path.rstrip(os.sep))
        with open(os.path.join(path, keys.SCHEMA_FILE)) as f:
            schema = json.load(f)
        extra = set(schema.get("extra_columns") or ())
        truth = {keys.TRUE_CVR, keys.CONVERSION_IF_CLICKED} <= extra
        aliccp = _reader_format(path) in ALICCP_FORMATS or label.lower().startswith(
            ALICCP_LABEL_PREFIXES
        )
        return cls(path, label, _fingerprint(path), aliccp, truth)

    @property
    def key(self):
        return self.fingerprint

    def to_dict(self):
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, config):
        return cls(**{k: v for k, v in config.items() if k != "kind"})


DATASET_KINDS = {SimulatedDataset.kind: SimulatedDataset, ExternalDataset.kind: ExternalDataset}


def dataset_from_dict(config):
    kind = config.get("kind")
    if kind not in DATASET_KINDS:
        raise ValueError(f"Unknown dataset kind. Received: kind={kind!r}")
    return DATASET_KINDS[kind].from_dict(config)


# === Training ===


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How every estimator of the grid is trained: the same for all.

    The estimator is built as `Estimator(schema, embedding_dim=...,
    backbone=..., backbone_config=..., **params)` (params deep-merged last,
    so `--param backbone_config.hidden_units=[64,32]` wins) and trained by
    `tfcvr.training.train` with `optimizer`.

    Args:
        epochs: int >= 1.
        batch_size: int >= 1.
        learning_rate: float > 0.
        embedding_dim: int >= 1.
        backbone: str. Registered backbone name (`towers`, `mmoe`, ...).
        backbone_config: dict. Backbone constructor kwargs.
        params: dict. Extra estimator constructor kwargs.
        precision: str. `float32`, `mixed_bfloat16` or `mixed_float16`.
        optimizer: str. As `tfcvr train --optimizer`. Left out of `to_dict`
            when it is the default `adam` (Keras' Adam, fused), so cells
            recorded before the field existed (Keras' Adam op by op: the
            same numbers) keep their ids.
        controls: dict. Other `tfcvr.training.train` arguments, from
            `CONTROLS` (e.g. a tuned setting's weight decay and propensity);
            left out of `to_dict` when empty, so untuned cells keep their ids.
    """

    epochs: int = 1
    batch_size: int = 1024
    learning_rate: float = 1e-3
    embedding_dim: int = 16
    backbone: str = "towers"
    backbone_config: dict = dataclasses.field(default_factory=dict)
    params: dict = dataclasses.field(default_factory=dict)
    precision: str = "float32"
    optimizer: str = OPTIMIZERS[0]
    controls: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        unknown = sorted(set(self.controls) - set(CONTROLS)) if isinstance(
            self.controls, dict) else self.controls
        if unknown:
            raise ValueError(
                f"controls take {list(CONTROLS)}. Received: controls={self.controls!r}")
        for name in ("epochs", "batch_size", "embedding_dim"):
            check_int(name, getattr(self, name), 1)
        lr = self.learning_rate
        if not _is_number(lr) or not lr > 0:
            raise ValueError(
                f"learning_rate must be a number > 0. Received: learning_rate={lr!r}"
            )
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(
                f"backbone must be a backbone name. Received: backbone={self.backbone!r}"
            )
        for name in ("backbone_config", "params"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(
                    f"{name} must be a dict. Received: {name}={value!r}"
                )
            normalize(value)  # raises for values JSON cannot hold
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(PRECISIONS)}. Received: "
                f"precision={self.precision!r}"
            )

        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {list(OPTIMIZERS)}. Received: "
                f"optimizer={self.optimizer!r}"
            )

    def __hash__(self):
        return hash(canonical_json(self.to_dict()))

    def model_params(self):
        """Constructor kwargs of the estimator (besides the schema)."""
        base = {
            "embedding_dim": self.embedding_dim,
            "backbone": self.backbone,
            "backbone_config": copy.deepcopy(self.backbone_config),
        }
        return deep_merge(base, self.params)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        config = copy.deepcopy(dataclasses.asdict(self))
        if not config["controls"]:
            config.pop("controls")
        if config["optimizer"] == OPTIMIZERS[0]:
            config.pop("optimizer")
        return config

    @classmethod
    def from_dict(cls, config):
        return cls(**config)


# `tfcvr.training.train` arguments a cell may set besides the fields above.
CONTROLS = ("weight_decay", "embedding_l2", "propensity", "propensity_calibration")


# === Cells ===


@dataclasses.dataclass(frozen=True)
class GridCell:
    """One run of the grid: an estimator, a seed, a dataset, the settings.

    `cell_id` hashes the full config (canonical JSON), so a finished cell is
    recognised in `results.jsonl` however the grid was spelled on the
    command line; `group_id` hashes everything but the seeds (the run seed
    and the simulation seed), so the runs that a report row averages share
    it.

    A named variant (`ModelVariant` with a label or overrides) adds its
    label and overrides to the config, so its cells differ from the plain
    estimator's and from each other; a plain estimator's config (and id)
    is the same as before variants existed.

    Args:
        model: str. Registered estimator name.
        seed: int >= 0. Seeds Keras, NumPy and the shuffles.
        dataset: `SimulatedDataset` or `ExternalDataset`.
        train: `TrainSettings`.
        eval_split: str. Split the metrics are computed on.
        eval_batch_size: int >= 1.
        variant: `ModelVariant` of `model`, or None (the plain estimator).
    """

    model: str
    seed: int
    dataset: SimulatedDataset | ExternalDataset
    train: TrainSettings
    eval_split: str = "eval"
    eval_batch_size: int = 8192
    variant: ModelVariant | None = None

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a name. Received: model={self.model!r}")
        if self.variant is not None:
            _check_type("variant", self.variant, (ModelVariant,))
            if self.variant.estimator != self.model:
                raise ValueError(
                    f"variant {self.variant.label!r} is of {self.variant.estimator!r}, "
                    f"not of model={self.model!r}"
                )
            if self.variant.is_plain:
                object.__setattr__(self, "variant", None)
        check_int("seed", self.seed, 0)
        _check_type("dataset", self.dataset, (SimulatedDataset, ExternalDataset))
        _check_type("train", self.train, (TrainSettings,))
        check_int("eval_batch_size", self.eval_batch_size, 1)

    def __hash__(self):
        return hash(canonical_json(self.to_dict()))

    def to_dict(self):
        config = {
            "format": CELL_FORMAT,
            "model": self.model,
            "seed": self.seed,
            "dataset": self.dataset.to_dict(),
            "train": self.train.to_dict(),
            "eval_split": self.eval_split,
            "eval_batch_size": self.eval_batch_size,
        }
        if self.variant is not None:
            config["variant"] = self.variant.to_dict()
        return config

    @classmethod
    def from_dict(cls, config):
        variant = config.get("variant")
        return cls(
            model=config["model"],
            seed=config["seed"],
            dataset=dataset_from_dict(config["dataset"]),
            train=TrainSettings.from_dict(config["train"]),
            eval_split=config.get("eval_split", "eval"),
            eval_batch_size=config.get("eval_batch_size", 8192),
            variant=None if variant is None else ModelVariant.from_dict(variant),
        )

    @property
    def label(self):
        """The report row name: the variant's label or the estimator's."""
        return self.model if self.variant is None else self.variant.label

    @property
    def overrides(self):
        return {} if self.variant is None else copy.deepcopy(self.variant.overrides)

    def model_params(self):
        """Constructor kwargs: the shared setting, then the variant's
        overrides (deep-merged, so they win)."""
        return deep_merge(self.train.model_params(), self.overrides)

    @property
    def cell_id(self):
        return short_hash(self.to_dict())

    @property
    def group_id(self):
        config = self.to_dict()
        config.pop("seed")
        config["dataset"].pop("seed", None)
        return short_hash(config, 12)

    def describe(self):
        return f"{self.label} seed={self.seed} {self.dataset.label}"


# === The grid ===


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """The estimator grid: estimators x seeds x datasets, one setting.

    Datasets are one simulated dataset per (selection bias, data seed) plus
    the preprocessed directories in `datasets`. With `data_seed=None` run
    seed `s` trains on data simulated with seed `s`, so the spread over
    seeds covers both the data draw and the training noise; an int makes
    every run share the data of that seed (fewer datasets to build, spread
    = training noise only).

    Args:
        models: tuple of registered estimator names and `ModelVariant`s
            (a plain variant is stored as its name); labels must differ.
        seeds: tuple of int run seeds.
        selection_biases: tuple of float selection-bias strengths of the
            simulated datasets (empty: no simulated data).
        rows: int. Simulated impressions per dataset.
        ctr, cvr: float. Target CTR and CVR among clicks of the simulation.
        num_users, num_items: int or None. Size of the simulated world.
        cvr_noise: float or None. See `SimulatedDataset`.
        data_seed: int or None. See above.
        datasets: tuple of `ExternalDataset`.
        train: `TrainSettings`.
        eval_split: str. Defaults to `"eval"`.
        eval_batch_size: int. Defaults to 8192.
        tuned: dict `(model, tuning_key) -> TrainSettings`, each
            estimator's own setting per dataset group (`tfcvr bench grid
            --tuned`, see `tfcvr.bench.grid.tuning`); others use `train`.
    """

    models: tuple
    seeds: tuple = (0,)
    selection_biases: tuple = (0.0, 1.0)
    rows: int = 30_000
    ctr: float = 0.04
    cvr: float = 0.05
    num_users: int | None = None
    num_items: int | None = None
    cvr_noise: float | None = None
    data_seed: int | None = None
    datasets: tuple = ()
    train: TrainSettings = dataclasses.field(default_factory=TrainSettings)
    eval_split: str = "eval"
    eval_batch_size: int = 8192
    tuned: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("models", tuple(
            m.estimator if isinstance(m, ModelVariant) and m.is_plain else m
            for m in _tuple("models", self.models, (str, ModelVariant))))
        labels = [self._variant(m).label for m in self.models]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"models has duplicate labels: {', '.join(twice)}")
        set_("seeds", _tuple("seeds", self.seeds, int))
        set_("selection_biases", tuple(float(b) for b in _tuple(
            "selection_biases", self.selection_biases, (int, float))))
        set_("datasets", _tuple("datasets", self.datasets, ExternalDataset))
        if not self.models:
            raise ValueError("models must name at least one estimator. Received: models=()")
        if not self.seeds:
            raise ValueError("seeds must hold at least one seed. Received: seeds=()")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be >= 0. Received: seeds={self.seeds}")
        if not self.selection_biases and not self.datasets:
            raise ValueError(
                "The grid has no dataset: give selection biases to simulate "
                "or preprocessed dataset directories."
            )
        check_int("data_seed", self.data_seed, 0, optional=True)
        labels = [d.label for d in self.datasets]
        if len(set(labels)) != len(labels):
            raise ValueError(
                f"Datasets need distinct labels (use LABEL=DIR). Received: {labels}"
            )
        _check_type("train", self.train, (TrainSettings,))
        # Fails early, with the field's own message, on bad simulation knobs.
        self.simulated_datasets()

    def __hash__(self):
        return hash(tuple(c.cell_id for c in self.cells()))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @staticmethod
    def _variant(model):
        return model if isinstance(model, ModelVariant) else ModelVariant.plain(model)

    def variants(self):
        """Every model as a `ModelVariant` (plain ones included)."""
        return [self._variant(m) for m in self.models]

    @property
    def labels(self):
        """The report row name of every model, in order."""
        return [v.label for v in self.variants()]

    def simulated_dataset(self, selection_bias, run_seed):
        return SimulatedDataset(
            selection_bias=selection_bias,
            seed=run_seed if self.data_seed is None else self.data_seed,
            rows=self.rows,
            ctr=self.ctr,
            cvr=self.cvr,
            num_users=self.num_users,
            num_items=self.num_items,
            cvr_noise=self.cvr_noise,
        )

    def simulated_datasets(self):
        """Every distinct simulated dataset, in build order."""
        out = []
        for bias in self.selection_biases:
            for seed in self.seeds:
                dataset = self.simulated_dataset(bias, seed)
                if dataset not in out:
                    out.append(dataset)
        return out

    def cells(self):
        """Every cell, grouped by dataset so each is built right before use."""
        runs = [(seed, self.simulated_dataset(bias, seed))
                for bias in self.selection_biases for seed in self.seeds]
        runs += [(seed, dataset) for dataset in self.datasets for seed in self.seeds]
        return [
            GridCell(
                model=variant.estimator,
                seed=seed,
                dataset=dataset,
                train=self.settings_for(variant.label, dataset),
                eval_split=self.eval_split,
                eval_batch_size=self.eval_batch_size,
                variant=variant,
            )
            for seed, dataset in runs
            for variant in self.variants()
        ]

    @staticmethod
    def tuning_key(dataset):
        """The dataset group one tuned setting serves: a selection bias of
        the simulated data, or an external dataset's label."""
        if isinstance(dataset, SimulatedDataset):
            return f"sim-bias{dataset.selection_bias:g}"
        return dataset.label

    def tuning_datasets(self):
        """`tuning_key -> dataset` tuned on: each group's first-seed data."""
        out = {}
        for bias in self.selection_biases:
            dataset = self.simulated_dataset(bias, self.seeds[0])
            out[self.tuning_key(dataset)] = dataset
        for dataset in self.datasets:
            out[self.tuning_key(dataset)] = dataset
        return out

    def settings_for(self, model, dataset):
        return self.tuned.get((model, self.tuning_key(dataset)), self.train)

    def to_dict(self):
        return {
            "models": [m if isinstance(m, str) else m.to_dict() for m in self.models],
            "seeds": list(self.seeds),
            "selection_biases": list(self.selection_biases),
            "rows": self.rows,
            "ctr": self.ctr,
            "cvr": self.cvr,
            "num_users": self.num_users,
            "num_items": self.num_items,
            "cvr_noise": self.cvr_noise,
            "data_seed": self.data_seed,
            "datasets": [d.to_dict() for d in self.datasets],
            "train": self.train.to_dict(),
            "eval_split": self.eval_split,
            "eval_batch_size": self.eval_batch_size,
        }
