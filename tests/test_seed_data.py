"""The committed seed set is exactly what `tools.seed_data.generate` writes with its defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.seed_data import generate

COMMITTED = Path(__file__).resolve().parents[1] / "gateway" / "data" / "seed_reviews.jsonl"


def test_default_output_is_the_committed_file() -> None:
    assert generate.DEFAULT_OUT == COMMITTED


def test_regenerates_committed_seed_set_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "seed_reviews.jsonl"
    generate.main(["--out", str(out)])
    assert f"wrote {len(COMMITTED.read_bytes().splitlines())} reviews" in capsys.readouterr().out
    assert out.read_bytes() == COMMITTED.read_bytes()


def test_other_seed_differs() -> None:
    default = generate.generate()
    other = generate.generate(seed=generate.DEFAULT_SEED + 1)
    assert default != other
    assert {r["category"] for r in other} == set(generate.load_templates().categories)
