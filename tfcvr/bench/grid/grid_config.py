import dataclasses

from tfcvr.bench.grid.external_dataset import ExternalDataset
from tfcvr.bench.grid.grid_cell import GridCell
from tfcvr.bench.grid.simulated_dataset import SimulatedDataset
from tfcvr.bench.grid.train_settings import TrainSettings


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
        models: tuple of registered estimator names.
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

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("models", _tuple("models", self.models, str))
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
        if self.data_seed is not None and (
            isinstance(self.data_seed, bool) or not isinstance(self.data_seed, int)
            or self.data_seed < 0
        ):
            raise ValueError(
                f"data_seed must be None or an integer >= 0. Received: "
                f"data_seed={self.data_seed!r}"
            )
        labels = [d.label for d in self.datasets]
        if len(set(labels)) != len(labels):
            raise ValueError(
                f"Datasets need distinct labels (use LABEL=DIR). Received: {labels}"
            )
        if not isinstance(self.train, TrainSettings):
            raise ValueError(
                f"train must be a TrainSettings. Received: {type(self.train).__name__}"
            )
        # Fails early, with the field's own message, on bad simulation knobs.
        self.simulated_datasets()

    def __hash__(self):
        return hash(tuple(c.cell_id for c in self.cells()))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

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
        cells = []
        for bias in self.selection_biases:
            for seed in self.seeds:
                for model in self.models:
                    cells.append(self._cell(model, seed, self.simulated_dataset(bias, seed)))
        for dataset in self.datasets:
            for seed in self.seeds:
                for model in self.models:
                    cells.append(self._cell(model, seed, dataset))
        return cells

    def _cell(self, model, seed, dataset):
        return GridCell(
            model=model,
            seed=seed,
            dataset=dataset,
            train=self.train,
            eval_split=self.eval_split,
            eval_batch_size=self.eval_batch_size,
        )

    def to_dict(self):
        return {
            "models": list(self.models),
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
