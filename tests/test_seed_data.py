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


def test_shipped_baseline_matches_the_seed_set_and_installs(tmp_path: Path) -> None:
    """The package's trained baseline was built from the committed seed file with this code's
    recipe (`make seed-data` rebuilds both), and `serve` installs it by copying."""
    from gateway.local.loader import baseline_model_path, load_local_model
    from training.baseline_card import (
        PACKAGED_BASELINE,
        baseline_is_current,
        card_is_current,
        install_packaged_baseline,
    )
    from training.seed import seed_sha256

    assert card_is_current(PACKAGED_BASELINE, seed_sha256()), "run `make seed-data`"
    assert not baseline_is_current(tmp_path)
    assert install_packaged_baseline(tmp_path)
    assert baseline_is_current(tmp_path)
    model = load_local_model(baseline_model_path(tmp_path))
    answer = model.predict("The app crashes every time I tap pay at checkout")
    assert answer.triage.category == "Bug Report"
    weights = baseline_model_path(tmp_path) / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-100])  # a damaged copy is not current
    assert not baseline_is_current(tmp_path)
    assert install_packaged_baseline(tmp_path) and baseline_is_current(tmp_path)
