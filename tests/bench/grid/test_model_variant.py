import pytest

from tfcvr.bench.grid.model_variant import ModelVariant
from tfcvr.bench.grid.model_variant import split_top_level

ARGUMENTS = {"cstwa": ["use_structure_migrator", "backbone_config"], "esmm": ["ctr_weight"]}


def test_parse_plain_and_variant():
    assert ModelVariant.parse(" esmm ") == ModelVariant.plain("esmm")
    assert ModelVariant.parse("esmm").is_plain
    variant = ModelVariant.parse(
        "wide=cstwa:use_structure_migrator=false:backbone_config.hidden_units=[64,32]"
        ":backbone_config.name=x")
    assert variant == ModelVariant("wide", "cstwa", {
        "use_structure_migrator": False,
        "backbone_config": {"hidden_units": [64, 32], "name": "x"}})
    assert not variant.is_plain
    # The --models spelling parses back to the same variant.
    assert ModelVariant.parse(variant.spec()) == variant
    assert ModelVariant.plain("esmm").spec() == "esmm"
    assert ModelVariant.from_dict(variant.to_dict()) == variant


def test_split_keeps_json_values_whole():
    assert split_top_level('a,b=x:k=[1,2]:d={"p":1,"q":2},c', ",") == [
        "a", 'b=x:k=[1,2]:d={"p":1,"q":2}', "c"]
    assert split_top_level('x:k={"a":1}:s="u:v"', ":") == ["x", 'k={"a":1}', 's="u:v"']


@pytest.mark.parametrize("text, message", [
    ("cstwa:use_structure_migrator=false", "needs a label"),
    ("x=", "names no estimator"),
    ("x=cstwa:use_structure_migrator", "KEY=VALUE"),
    ("x=cstwa:=1", "KEY=VALUE"),
    ("bad label=cstwa:a=1", "letters, digits"),
    ("cstwa=cstwa:use_structure_migrator=false", "label of its own"),
])
def test_parse_errors(text, message):
    with pytest.raises(ValueError, match=message):
        ModelVariant.parse(text)


def test_check_against_the_constructor_arguments():
    ModelVariant("a", "cstwa", {"use_structure_migrator": False}).check(ARGUMENTS)
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        ModelVariant("a", "nope", {"x": 1}).check(ARGUMENTS)
    with pytest.raises(ValueError, match="cstwa has no constructor argument use_sm"):
        ModelVariant("a", "cstwa", {"use_sm": False}).check(ARGUMENTS)
