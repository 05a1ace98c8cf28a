"""A named estimator variant of the grid: a label, a registered estimator
and constructor overrides, so ablations and sweeps are rows of one grid.

    cstwa-no-sm=cstwa:use_structure_migrator=false
    chorus-a0=choruscvr:align_weight=0
    esmm-wide=esmm:backbone_config.hidden_units=[128,64]:embedding_dim=16

`LABEL=ESTIMATOR:KEY=VALUE[:KEY=VALUE...]`: values are JSON when they parse
as JSON, else strings; dotted keys nest (as `--param`). The overrides are
deep-merged over the grid's shared setting (`--param`, `--embedding-dim`,
...), so a variant differs from its estimator's plain row only by them.
"""

import copy
import dataclasses
import json
import re

from tfcvr.training.params import parse_params

# A label is a report row name and part of a file-system-safe identity.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_OPENERS = {"[": "]", "{": "}"}


def split_top_level(text, separator):
    """`text` split at `separator` outside brackets, braces and quotes
    (JSON values such as `[64,32]` keep their commas and colons)."""
    parts, depth, quote, start = [], [], None, 0
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char in _OPENERS:
            depth.append(_OPENERS[char])
        elif depth and char == depth[-1]:
            depth.pop()
        elif char == separator and not depth:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


@dataclasses.dataclass(frozen=True)
class ModelVariant:
    """An estimator of the grid under a label of its own, with constructor
    overrides on top of the grid's setting.

    A plain estimator is the variant with `label == estimator` and no
    overrides; it keeps the cell identity it had before variants existed.

    Args:
        label: str. Report row name (letters, digits, `_.+-`).
        estimator: str. Registered estimator name.
        overrides: dict. Constructor kwargs (nested dicts merge key by key).
    """

    label: str
    estimator: str
    overrides: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.label, str) or not _LABEL.match(self.label):
            raise ValueError(
                "A variant label is letters, digits and `_.+-`, starting with a "
                f"letter or digit. Received: label={self.label!r}"
            )
        if not isinstance(self.estimator, str) or not self.estimator:
            raise ValueError(
                f"estimator must be an estimator name. Received: estimator={self.estimator!r}"
            )
        if not isinstance(self.overrides, dict):
            raise ValueError(
                f"overrides must be a dict. Received: overrides={self.overrides!r}"
            )
        if self.label == self.estimator and self.overrides:
            raise ValueError(
                f"A variant with overrides needs a label of its own, not the "
                f"estimator's name. Received: label={self.label!r}"
            )

    def __hash__(self):
        return hash((self.label, self.estimator, repr(sorted(self.overrides.items()))))

    @property
    def is_plain(self):
        return self.label == self.estimator and not self.overrides

    @classmethod
    def plain(cls, estimator):
        return cls(estimator, estimator)

    @classmethod
    def parse(cls, text):
        """`NAME` or `LABEL=ESTIMATOR[:KEY=VALUE...]` -> ModelVariant."""
        text = str(text).strip()
        label, sep, spec = text.partition("=")
        if ":" in label:
            raise ValueError(
                f"A variant with overrides needs a label: LABEL=ESTIMATOR:KEY=VALUE. "
                f"Received: {text!r}"
            )
        if not sep:
            return cls.plain(text)
        parts = split_top_level(spec, ":")
        estimator, items = parts[0], parts[1:]
        if not estimator:
            raise ValueError(f"Variant {label.strip()!r} names no estimator. Received: {text!r}")
        for item in items:
            if "=" not in item or not item.split("=", 1)[0].strip():
                raise ValueError(
                    f"Variant {label.strip()!r}: an override is KEY=VALUE. Received: {item!r}"
                )
        return cls(label.strip(), estimator, parse_params(items))

    def check(self, arguments):
        """Raises a one-line ValueError unless the estimator is registered
        and every override names one of its constructor arguments.

        Args:
            arguments: dict. Estimator name -> its constructor argument
                names (`tfcvr.models.estimator_arguments`).
        """
        if self.estimator not in arguments:
            raise ValueError(
                f"Variant {self.label!r}: unknown estimator {self.estimator!r}. "
                f"Registered: {', '.join(sorted(arguments))}"
            )
        known = set(arguments[self.estimator])
        unknown = sorted(set(self.overrides) - known)
        if unknown:
            raise ValueError(
                f"Variant {self.label!r}: {self.estimator} has no constructor "
                f"argument {', '.join(unknown)}. Its arguments: {', '.join(sorted(known))}"
            )

    def spec(self):
        """The `--models` spelling of this variant."""
        if self.is_plain:
            return self.estimator
        flat = []

        def walk(prefix, value):
            for key, item in value.items():
                if isinstance(item, dict) and item:
                    walk(f"{prefix}{key}.", item)
                else:
                    flat.append(f"{prefix}{key}={json.dumps(item, separators=(',', ':'))}")

        walk("", self.overrides)
        return ":".join([f"{self.label}={self.estimator}"] + flat)

    def to_dict(self):
        return {"label": self.label, "estimator": self.estimator,
                "overrides": copy.deepcopy(self.overrides)}

    @classmethod
    def from_dict(cls, config):
        return cls(config["label"], config["estimator"], dict(config.get("overrides") or {}))

