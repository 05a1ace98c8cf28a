import dataclasses

# Constructor arguments of `CVRModel` that the first stage takes over from
# the estimator's own parameters unless its own `params` set them.
INHERITED = ("embedding_dim", "backbone", "backbone_config", "embedding_combiner")


@dataclasses.dataclass(frozen=True)
class PretrainingStage:
    """A training stage that an estimator needs before its own.

    An estimator class that sets `pretraining = PretrainingStage(...)` is
    trained in two stages by `tfcvr.training.train` (and `tfcvr train`,
    `tfcvr bench`): first the registered estimator `estimator` with
    `params` on the same training split (or a trained model directory
    reused instead), then the estimator itself, to which the trainer hands
    the first model's embedding tables. Models never read files: the
    trainer does the I/O; the estimator only says which tables it wants
    and what to do with them, through two methods:

    - `pretrained_tables_wanted()`: names of schema features whose
      embedding tables it wants (an empty tuple skips the stage, e.g. in
      an ablation that does not use them);
    - `set_pretrained_tables(tables)`: receives `{feature: (rows, dim)
      float32 array}` once the estimator is built, before `fit`.

    The stage is configured by four `--param`s, consumed by the trainer and
    never passed to a constructor: `<name>_model_dir` (a model directory to
    reuse instead of training; its schema and vocabulary must equal the
    dataset's), `<name>_model` (registry name, default `estimator`),
    `<name>_params` (a dict updating `params`) and `<name>_epochs` (default:
    the run's epochs).

    Args:
        name: str. What the stage trains (`"ctr"`), used in the four
            parameter names and in progress lines.
        estimator: str. Registry name of the default first-stage model.
        params: dict. Its default constructor arguments.
        description: str. One line saying what the stage is for.
    """

    name: str
    estimator: str
    params: dict = dataclasses.field(default_factory=dict)
    description: str = ""

    def option(self, suffix):
        """The `--param` name of one stage option, e.g. `ctr_model_dir`."""
        return f"{self.name}_{suffix}"

    @property
    def options(self):
        return tuple(
            self.option(s) for s in ("model_dir", "model", "params", "epochs")
        )
