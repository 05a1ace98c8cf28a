import json

import pytest

from beam_jobs.example_logs import impression_spec
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features.input_spec import DEFAULT_MAX_LEN
from tfcvr.features.input_spec import DEFAULT_MAX_VALUE_BYTES
from tfcvr.features.input_spec import InputSpec


def _spec(**changes):
    config = impression_spec()
    config.update(changes)
    return config


def test_round_trip_through_json(tmp_path):
    spec = InputSpec.from_dict({**impression_spec(), "max_value_bytes": 64})
    path = spec.save(str(tmp_path / "spec.json"))
    loaded = InputSpec.load(path)
    assert loaded == spec
    assert InputSpec.load(str(tmp_path)) == spec
    assert json.loads(spec.to_json())["row_key"] == keys.ROW_ID


def test_contract_example_parses():
    spec = InputSpec.from_dict(
        {
            "columns": {
                "user_id": {"kind": "categorical_int"},
                "city": {"kind": "categorical_string", "min_count": 5},
                "history": {
                    "kind": "multi_categorical",
                    "value_dtype": "int64",
                    "separator": "|",
                    "max_len": 20,
                },
                "price": {"kind": "numeric", "log": True, "clip_max": 10.0},
                "item_id": {
                    "kind": "categorical_int",
                    "hash_buckets": 100000,
                    "embedding_group": "item",
                },
            },
            "labels": {"click": "click", "conversion": "conversion"},
            "user_id": "user_id",
            "item_id": "item_id",
            "extra_columns": [
                "row_id", "true_ctr", "true_cvr", "conversion_if_clicked"
            ],
            "timestamp": "timestamp",
            "row_key": "row_id",
            "vocab": {"min_count": 1, "top_k": None, "num_oov": 1},
        }
    )
    assert spec.min_count("city") == 5
    assert spec.min_count("user_id") == 1
    assert spec.vocab_name("item_id") is None  # hashed: no vocabulary
    assert spec.vocab_names == ("user_id", "city", "history")
    assert spec.source_columns[-1] == "timestamp"
    assert spec.source_columns.count("row_id") == 1  # extra and row key


def test_vocab_names_follow_embedding_groups():
    spec = InputSpec.from_dict(impression_spec())
    assert spec.vocab_name("item_id") == "item"
    assert spec.vocab_name("hist") == "item"
    assert spec.vocab_name("price") is None
    assert spec.vocab_names == ("user_id", "item", "city", "tags")
    assert spec.numeric_columns == ("price", "age")


def test_defaults_fill_in():
    spec = InputSpec.from_dict(
        {"columns": {"h": {"kind": "multi_categorical", "separator": "|"}}}
    )
    assert spec.labels == {keys.CLICK: keys.CLICK, keys.CONVERSION: keys.CONVERSION}
    assert spec.columns["h"]["max_len"] == DEFAULT_MAX_LEN
    assert spec.vocab == {"min_count": 1, "top_k": None, "num_oov": 1}
    assert spec.max_value_bytes == DEFAULT_MAX_VALUE_BYTES == 1024


def test_to_schema_fills_vocab_and_stats():
    spec = InputSpec.from_dict(impression_spec(num_oov=2))
    schema = spec.to_schema(
        vocab_sizes={"item": 7, "user_id": 3, "city": 2},
        stats={"price": {"mean": 1.5, "std": 0.5, "min": 0.1, "max": 3.0}},
        metadata={"format": "csv"},
    )
    assert isinstance(schema, Schema)
    assert schema["item_id"].vocab_size == 7
    assert schema["hist"].vocab_file == "vocab/item.txt"
    assert schema["item_id"].input_dim == schema["hist"].input_dim == 1 + 2 + 7
    assert schema["tags"].vocab_size == 0  # not given: empty vocabulary
    assert schema["price"].mean == 1.5 and schema["price"].log
    assert schema["age"].std == 1.0 and schema["age"].clip_max == 60.0
    assert schema.labels == (keys.CLICK, keys.CONVERSION)
    assert schema.timestamp == keys.TIMESTAMP
    assert schema.metadata == {"format": "csv"}
    assert Schema.from_json(schema.to_json()) == schema


def test_extra_labels_follow_click_and_conversion():
    spec = InputSpec.from_dict(
        _spec(labels={"cart": "added", "conversion": "buy", "click": "clk"})
    )
    assert list(spec.labels) == [keys.CLICK, keys.CONVERSION, "cart"]
    assert spec.to_schema().labels == (keys.CLICK, keys.CONVERSION, "cart")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"columns": {}}, "non-empty"),
        ({"columns": {"a": {}}}, "needs a `kind`"),
        ({"columns": {"a": {"kind": "dense"}}}, "unknown kind"),
        ({"columns": {"a": {"kind": "numeric", "colour": 1}}}, "unknown keys"),
        ({"columns": {"a": {"kind": "numeric", "mean": 1.0}}}, "computes"),
        ({"columns": {"__a": {"kind": "numeric"}}}, "'__'"),
        ({"labels": {"click": "click"}}, "'conversion'"),
        ({"labels": {"click": "x", "conversion": "x"}}, "same source"),
        ({"labels": {"click": "user_id", "conversion": "c"}}, "also a feature"),
        ({"user_id": "nobody"}, "user_id must name"),
        ({"extra_columns": "row_id"}, "list of column names"),
        ({"extra_columns": ["price"]}, "used twice"),
        ({"vocab": {"min_count": 0}}, "vocab.min_count"),
        ({"vocab": {"top_k": 2.5}}, "vocab.top_k"),
        ({"vocab": {"size": 3}}, "unknown keys"),
        ({"surprise": 1}, "unknown keys"),
        ({"max_value_bytes": 0}, "max_value_bytes must be a positive integer"),
        ({"max_value_bytes": "1k"}, "max_value_bytes must be a positive integer"),
    ],
)
def test_invalid_specs_raise_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as info:
        InputSpec.from_dict(_spec(**changes))
    assert "\n" not in str(info.value)


def test_embedding_group_members_must_agree():
    config = impression_spec()
    config["columns"]["hist"]["min_count"] = 3
    with pytest.raises(ValueError, match="must agree on min_count"):
        InputSpec.from_dict(config)
    config = impression_spec()
    config["columns"]["item_id"]["hash_buckets"] = 10
    with pytest.raises(ValueError, match="must agree on hash_buckets"):
        InputSpec.from_dict(config)
    config = impression_spec()
    config["columns"]["city"]["embedding_group"] = "user_id"
    with pytest.raises(ValueError, match="name of another column"):
        InputSpec.from_dict(config)


def test_check_columns_names_the_missing_ones():
    spec = InputSpec.from_dict(impression_spec())
    spec.check_columns(spec.source_columns)
    with pytest.raises(ValueError, match=r"\['city'\]"):
        spec.check_columns([c for c in spec.source_columns if c != "city"])


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="No input spec"):
        InputSpec.load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        InputSpec.load(str(bad))
    with pytest.raises(ValueError, match="`columns` object"):
        InputSpec.from_dict([1, 2])


def test_check_matches_compares_the_encoding_not_the_log_layout():
    spec = InputSpec.from_dict(impression_spec())
    sizes = {"item": 120, "city": 5, "tags": 5, "user_id": 40}
    stats = {"price": {"mean": 2.0, "std": 1.0, "min": 0.0, "max": 5.0},
             "age": {"mean": 40.0, "std": 12.0, "min": 18.0, "max": 60.0}}
    schema = spec.to_schema(sizes, stats)
    assert spec.computed_from(schema) == (sizes, stats)
    spec.check_matches(schema, source="runs/m")
    # Another separator reads another log layout into the same encoding.
    relaid = impression_spec()
    relaid["columns"]["hist"]["separator"] = ";"
    InputSpec.from_dict(relaid).check_matches(schema, source="runs/m")
    changed = impression_spec()
    changed["columns"]["user_id"] = {"kind": "categorical_string"}
    changed["columns"]["hist"]["max_len"] = 9
    del changed["columns"]["age"]
    with pytest.raises(ValueError) as info:
        InputSpec.from_dict(changed).check_matches(schema, source="runs/m")
    message = str(info.value)
    assert "\n" not in message and "runs/m" in message
    assert "age (not in the spec)" in message
    assert "hist (max_len)" in message
    assert "user_id (kind, value_dtype)" in message


def test_features_only_columns():
    spec = InputSpec.from_dict(impression_spec())
    assert spec.feature_source_columns == tuple(spec.columns) + (keys.ROW_ID,)
    spec.check_columns(spec.feature_source_columns, features_only=True)
    with pytest.raises(ValueError, match="click"):
        spec.check_columns(spec.feature_source_columns)
