"""The named grids: `smoke` (CI, minutes on 2 CPU cores), `default` (every
estimator, 3 seeds, 3 bias strengths: the leaderboard of the README, about
30 minutes on 2 cores), `seed` (the default setting for the seed estimators
CSTWA, ChorusCVR and DDPO beside the baselines, with CSTWA's ablation and
ChorusCVR's align-weight sweep as variant rows) and `paper` (every
estimator, 5 seeds, 4 bias strengths, 1M rows, for a big machine); and the
named variant groups (`@cstwa-ablation`, `@choruscvr-align`) that
`--models` and the presets use."""

from tfcvr.bench.grid.config import GridConfig
from tfcvr.bench.grid.config import TrainSettings
from tfcvr.bench.grid.model_variant import ModelVariant

# The smoke grid adds the first of these that is registered: a debiasing
# estimator next to the naive baseline and ESMM.
DEBIASING_PREFERENCE = (
    "escm2_ips",
    "escm2_ipw",
    "multi_ipw",
    "escm2_dr",
    "multi_dr",
    "dr_jl",
    "mrdr",
    "dcmt",
)
SMOKE_BASE_MODELS = ("naive", "esmm")
# Estimators that need a label the simulator does not write (ESM2: the
# post-click action); `--models` can still name them for datasets that have
# it.
NEEDS_EXTRA_LABELS = ("esm2",)
# Named variant groups: `--models @NAME` expands to these rows. CSTWA's
# ablation switches one component off per row (the paper's ablation); the
# ChorusCVR sweep sits beside the plain `choruscvr` row (align_weight 1, the
# default), and 0 turns SAM off exactly.
MODEL_GROUPS = {
    "cstwa-ablation": (
        ModelVariant("cstwa-no-sm", "cstwa", {"use_structure_migrator": False}),
        ModelVariant("cstwa-no-cp", "cstwa", {"use_click_perceptron": False}),
        ModelVariant("cstwa-no-ce", "cstwa", {"use_curse_escaper": False}),
    ),
    "choruscvr-align": (
        ModelVariant("choruscvr-align0", "choruscvr", {"align_weight": 0.0}),
        ModelVariant("choruscvr-align0.1", "choruscvr", {"align_weight": 0.1}),
    ),
}
# The seed preset's rows: the baselines, the three seed estimators, then
# the variant groups.
SEED_MODELS = ("naive", "esmm", "escm2_dr", "dcmt", "cstwa", "choruscvr", "ddpo",
               "@cstwa-ablation", "@choruscvr-align")
# How the grid runs, not what a cell is: not part of GridConfig or the hash.
_RUN_OPTIONS = ("cell_timeout", "jobs")

PRESETS = {
    # ~30k rows in a small world (2k users, 3k items) with CTR and CVR high
    # enough that the 3k eval rows hold ~30 clicked conversions, so every
    # AUC is defined; one simulated dataset per bias (data seed 0).
    "smoke": {
        "seeds": (0, 1),
        "selection_biases": (0.0, 2.0),
        "rows": 30_000,
        "ctr": 0.1,
        "cvr": 0.1,
        "num_users": 2_000,
        "num_items": 3_000,
        "data_seed": 0,
        "train": TrainSettings(
            epochs=1,
            batch_size=1024,
            learning_rate=2e-3,
            embedding_dim=8,
            backbone="towers",
            backbone_config={"hidden_units": [32, 16]},
        ),
        "cell_timeout": 900,
        # Two runs at once: on 2 cores most of a small run is the child's
        # TensorFlow import and tracing, which overlap well.
        "jobs": 2,
    },
    # Every estimator on data rich enough in conversions that the eval split
    # holds ~240 clicked conversions; fresh data per seed, so the error bars
    # include the data's variance. One epoch, as in the papers: a second
    # epoch over-fits the id embeddings (naive at bias 0, clicked eval log
    # loss: 0.303 after 1 epoch at lr 2e-3; 0.326 and 0.508 after 2 and 4
    # epochs at lr 1e-3, 0.372 after 2 at lr 5e-3).
    "default": {
        "seeds": (0, 1, 2),
        "selection_biases": (0.0, 1.0, 2.0),
        "rows": 300_000,
        "ctr": 0.08,
        "cvr": 0.1,
        "num_users": 5_000,
        "num_items": 8_000,
        "data_seed": None,
        "train": TrainSettings(
            epochs=1,
            batch_size=1024,
            learning_rate=2e-3,
            embedding_dim=8,
            backbone="towers",
            backbone_config={"hidden_units": [64, 32]},
        ),
        "cell_timeout": 1800,
        "jobs": 2,
    },
    # The NISE/IdeFN setting (MLP towers [160, 80], embedding 16, Adam 1e-3,
    # batch 2048), Ali-CCP-like CTR 4% with CVR 5% among clicks so 1M rows
    # keep ~2k conversions; fresh data per seed.
    "paper": {
        "seeds": (0, 1, 2, 3, 4),
        "selection_biases": (0.0, 1.0, 2.0, 3.0),
        "rows": 1_000_000,
        "ctr": 0.04,
        "cvr": 0.05,
        "num_users": None,
        "num_items": None,
        "data_seed": None,
        "train": TrainSettings(
            epochs=1,
            batch_size=2048,
            learning_rate=1e-3,
            embedding_dim=16,
            backbone="towers",
            backbone_config={"hidden_units": [160, 80]},
        ),
        "cell_timeout": None,
        "jobs": 1,
    },
}

# The default setting for the seed estimators, CSTWA's ablation and
# ChorusCVR's align-weight sweep: the same cells as the default preset's,
# so the two share results in one --out.
PRESETS["seed"] = dict(PRESETS["default"])


def expand_group(name):
    """The variants of group `name` (`@name` on the command line)."""
    if name not in MODEL_GROUPS:
        raise ValueError(
            f"Unknown model group @{name}; choose from "
            f"{', '.join('@' + g for g in MODEL_GROUPS)}"
        )
    return MODEL_GROUPS[name]


def preset_models(name, registered):
    """The estimators of preset `name` among the `registered` names."""
    registered = list(registered)
    if name == "seed":
        out = []
        for entry in SEED_MODELS:
            members = expand_group(entry[1:]) if entry.startswith("@") else (entry,)
            for member in members:
                estimator = member if isinstance(member, str) else member.estimator
                if estimator in registered:
                    out.append(member)
        return tuple(out)
    if name in ("default", "paper"):
        return tuple(m for m in registered if m not in NEEDS_EXTRA_LABELS)
    models = [m for m in SMOKE_BASE_MODELS if m in registered]
    debiasing = next((m for m in DEBIASING_PREFERENCE if m in registered), None)
    if debiasing is not None:
        models.append(debiasing)
    if not models:
        raise ValueError(
            f"None of the smoke estimators {list(SMOKE_BASE_MODELS)} is "
            f"registered. Registered: {registered}"
        )
    return tuple(models)


def preset_config(name, registered, **overrides):
    """`GridConfig` of preset `name`, with `overrides` of its fields."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    fields = {k: v for k, v in PRESETS[name].items() if k not in _RUN_OPTIONS}
    fields["models"] = preset_models(name, registered)
    fields.update(overrides)
    return GridConfig(**fields)


def preset_cell_timeout(name):
    return PRESETS[name]["cell_timeout"]


def preset_jobs(name):
    return PRESETS[name]["jobs"]
