import dataclasses

from tfcvr.bench.grid._canonical import canonical_json
from tfcvr.bench.grid._canonical import short_hash
from tfcvr.bench.grid.external_dataset import ExternalDataset
from tfcvr.bench.grid.simulated_dataset import SimulatedDataset
from tfcvr.bench.grid.train_settings import TrainSettings

# Bumped when a change of the grid code changes what a cell measures, so old
# results are not taken for new ones.
CELL_FORMAT = 1


def dataset_from_dict(config):
    kinds = {SimulatedDataset.kind: SimulatedDataset, ExternalDataset.kind: ExternalDataset}
    kind = config.get("kind")
    if kind not in kinds:
        raise ValueError(f"Unknown dataset kind. Received: kind={kind!r}")
    return kinds[kind].from_dict(config)


@dataclasses.dataclass(frozen=True)
class GridCell:
    """One run of the grid: an estimator, a seed, a dataset, the settings.

    `cell_id` hashes the full config (canonical JSON), so a finished cell is
    recognised in `results.jsonl` however the grid was spelled on the
    command line; `group_id` hashes everything but the seeds (the run seed
    and the simulation seed), so the runs that a report row averages share
    it.

    Args:
        model: str. Registered estimator name.
        seed: int >= 0. Seeds Keras, NumPy and the shuffles.
        dataset: `SimulatedDataset` or `ExternalDataset`.
        train: `TrainSettings`.
        eval_split: str. Split the metrics are computed on.
        eval_batch_size: int >= 1.
    """

    model: str
    seed: int
    dataset: SimulatedDataset | ExternalDataset
    train: TrainSettings
    eval_split: str = "eval"
    eval_batch_size: int = 8192

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a name. Received: model={self.model!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0. Received: seed={self.seed!r}")
        if not isinstance(self.dataset, (SimulatedDataset, ExternalDataset)):
            raise ValueError(
                f"dataset must be a SimulatedDataset or ExternalDataset. "
                f"Received: {type(self.dataset).__name__}"
            )
        if not isinstance(self.train, TrainSettings):
            raise ValueError(
                f"train must be a TrainSettings. Received: {type(self.train).__name__}"
            )
        size = self.eval_batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"eval_batch_size must be an integer >= 1. Received: eval_batch_size={size!r}"
            )

    def __hash__(self):
        return hash(canonical_json(self.to_dict()))

    def to_dict(self):
        return {
            "format": CELL_FORMAT,
            "model": self.model,
            "seed": self.seed,
            "dataset": self.dataset.to_dict(),
            "train": self.train.to_dict(),
            "eval_split": self.eval_split,
            "eval_batch_size": self.eval_batch_size,
        }

    @classmethod
    def from_dict(cls, config):
        return cls(
            model=config["model"],
            seed=config["seed"],
            dataset=dataset_from_dict(config["dataset"]),
            train=TrainSettings.from_dict(config["train"]),
            eval_split=config.get("eval_split", "eval"),
            eval_batch_size=config.get("eval_batch_size", 8192),
        )

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
        return f"{self.model} seed={self.seed} {self.dataset.label}"
