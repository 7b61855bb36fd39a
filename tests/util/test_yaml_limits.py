"""Bounded YAML: an alias bomb is refused fast with the line of the alias; ordinary
aliases, merges and big plain documents still load."""

from __future__ import annotations

import pytest
import yaml

from pilothouse.util.yaml_limits import (
    YamlLimitError,
    YamlLimits,
    check_expansion,
    compose_yaml,
    load_yaml,
)
from pilothouse.util.yaml_positions import load_with_positions
from tests.bombs import alias_bomb


def test_the_billion_laughs_bomb_is_small_and_refused_at_the_line_that_explodes() -> None:
    bomb = alias_bomb()
    assert len(bomb.encode()) < 450  # 9^9 = 387 million values in a few hundred bytes
    with pytest.raises(YamlLimitError) as caught:
        load_yaml(bomb)
    assert "alias" in str(caught.value)
    mark = caught.value.problem_mark
    assert mark is not None and 1 < mark.line + 1 <= 9
    # the positions map (copilot.yaml's loader) refuses it the same way
    with pytest.raises(YamlLimitError):
        load_with_positions(bomb)


def test_a_bomb_that_old_safe_load_accepts_in_seconds_is_refused() -> None:
    # 9^6 = 531,441 values: PyYAML builds it (sharing), anything walking it pays.
    with pytest.raises(YamlLimitError):
        load_yaml(alias_bomb(levels=6))


def test_too_many_aliases_are_refused_even_when_each_is_small() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 1_001) + "]\n"
    with pytest.raises(YamlLimitError, match="more than 1000 aliases"):
        load_yaml(text)
    assert load_yaml(text, YamlLimits(max_aliases=2_000))["b"][0] == "x"


def test_repeated_long_text_counts_by_characters() -> None:
    text = f"a: &a {'x' * 200_000}\nb: [" + ", ".join(["*a"] * 60) + "]\n"
    with pytest.raises(YamlLimitError, match="repeated characters"):
        load_yaml(text)


def test_a_recursive_anchor_is_refused() -> None:
    with pytest.raises(YamlLimitError, match="used inside itself"):
        load_yaml("a: &x [1, *x]\n")


def test_nesting_past_the_depth_limit_is_a_yaml_error_not_a_recursion_error() -> None:
    with pytest.raises(YamlLimitError, match="nested deeper than 100"):
        load_yaml("[" * 5_000 + "]" * 5_000)
    deep = load_yaml("[" * 90 + "]" * 90)
    for _ in range(89):
        deep = deep[0]
    assert deep == []


def test_ordinary_anchors_merges_and_large_documents_load() -> None:
    text = "base: &base {retries: 2, timeout: 5}\nfast:\n  <<: *base\n  timeout: 1\nslow: *base\n"
    assert load_yaml(text) == {
        "base": {"retries": 2, "timeout": 5},
        "fast": {"retries": 2, "timeout": 1},
        "slow": {"retries": 2, "timeout": 5},
    }
    # a big document written out in full (no aliases) is not limited by the alias caps
    big = "\n".join(f"k{i}: [{i}, {i + 1}, {i + 2}]" for i in range(20_000))
    assert len(load_yaml(big)) == 20_000


def test_compose_gives_data_and_node_from_one_parse() -> None:
    data, node = compose_yaml("a: 1\nb: [x, y]\n")
    assert data == {"a": 1, "b": ["x", "y"]}
    assert isinstance(node, yaml.MappingNode)
    assert compose_yaml("") == (None, None)


def test_check_expansion_is_linear_in_what_is_written() -> None:
    node = yaml.compose(alias_bomb(levels=30, width=2), Loader=yaml.SafeLoader)
    assert node is not None
    with pytest.raises(YamlLimitError):  # 2^30 values, checked without expanding them
        check_expansion(node)
