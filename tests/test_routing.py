"""Sticky weighted assignment and the routes file."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.experiments.config import RoutesFileError, load_routes, parse_routes
from gateway.request.assign import assign_variant

IDS = [f"review-{i}" for i in range(20_000)]


def test_shares_follow_weights() -> None:
    counts = Counter(assign_variant("s", {"a": 0.7, "b": 0.2, "c": 0.1}, rid) for rid in IDS)
    assert abs(counts["a"] / len(IDS) - 0.7) < 0.015
    assert abs(counts["b"] / len(IDS) - 0.2) < 0.015
    assert abs(counts["c"] / len(IDS) - 0.1) < 0.015


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=20))
def test_assignment_is_deterministic(review_id: str, salt: str) -> None:
    weights = {"control": 0.9, "candidate": 0.1}
    assert assign_variant(salt, weights, review_id) == assign_variant(
        salt, dict(weights), review_id
    )


def test_weight_change_moves_only_reviews_into_the_raised_variant() -> None:
    before = {rid: assign_variant("s", {"a": 0.6, "b": 0.3, "c": 0.1}, rid) for rid in IDS}
    after = {rid: assign_variant("s", {"a": 0.6, "b": 0.3, "c": 0.4}, rid) for rid in IDS}
    moved = [rid for rid in IDS if before[rid] != after[rid]]
    assert all(after[rid] == "c" for rid in moved)
    # optimal movement: c's share goes from 0.1 to 0.4/1.3
    assert abs(len(moved) / len(IDS) - (0.4 / 1.3 - 0.1)) < 0.015


def test_zero_weight_excludes_and_salt_reshuffles() -> None:
    assert {assign_variant("s", {"a": 1.0, "b": 0.0}, rid) for rid in IDS[:2000]} == {"a"}
    a = [assign_variant("s1", {"a": 0.5, "b": 0.5}, rid) for rid in IDS[:2000]]
    b = [assign_variant("s2", {"a": 0.5, "b": 0.5}, rid) for rid in IDS[:2000]]
    assert 0.4 < sum(x != y for x, y in zip(a, b, strict=True)) / 2000 < 0.6


def test_no_review_id_draws_at_random_with_the_same_shares() -> None:
    rng = random.Random(1)
    counts = Counter(assign_variant("s", {"a": 0.9, "b": 0.1}, None, rng) for _ in range(20_000))
    assert abs(counts["b"] / 20_000 - 0.1) < 0.01


def test_shipped_routes_files_are_valid() -> None:
    assert load_routes(None).default.variants[0].is_local
    example = load_routes(Path(__file__).parents[1] / "examples" / "ab-simulator.yaml")
    assert {v.name: v.weight for v in example.default.variants}["control"] == 0.9


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"weight": -1},
            "experiments[0].variants[0].weight: Input should be greater than or equal to 0",
        ),
        ({"bogus": 1}, "experiments[0].variants[0].bogus: Extra inputs are not permitted"),
        ({"timeout_s": 0}, "experiments[0].variants[0].timeout_s"),
        (
            {"model": "openai/x", "api_base": "ftp://h/v1"},
            "api_base: Value error, must be an http:// or https:// URL with a host",
        ),
        (
            {"model": "openai/x", "api_base": "https://user:sk-secret@h/v1"},
            "api_base: Value error, must not hold credentials",
        ),
        (
            {"model": "openai/x", "api_base": "https://h/v1?api-version=1"},
            "api_base: Value error, must not hold a query",
        ),
        ({"model": "openai/x", "api_base": "https://h:port/v1"}, "api_base: Value error"),
        ({"model": "openai/x", "api_base": "https://h/v1 x"}, "api_base: Value error"),
    ],
)
def test_bad_variant_is_named(patch: dict[str, object], message: str) -> None:
    variant = {"name": "a", "model": "local", "weight": 1.0, **patch}
    with pytest.raises(
        RoutesFileError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as err:
        parse_routes({"experiments": [{"name": "x", "salt": "s", "variants": [variant]}]})
    assert "sk-secret" not in str(err.value)


def test_unknown_fallback_and_shadow_are_named() -> None:
    base = {"name": "x", "salt": "s", "variants": [{"name": "a", "model": "local", "weight": 1}]}
    with pytest.raises(RoutesFileError, match="fallback names unknown variant 'b'"):
        parse_routes({"experiments": [{**base, "fallback": ["b"]}]})
    with pytest.raises(RoutesFileError, match=r"shadow\.variant 'c' is not a variant"):
        parse_routes({"experiments": [{**base, "shadow": {"variant": "c"}}]})


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(RoutesFileError, match="cannot read routes file"):
        load_routes(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [\n")
    with pytest.raises(RoutesFileError, match="not valid YAML"):
        load_routes(bad)
