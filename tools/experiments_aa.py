"""A/A (and worse-candidate) simulations of the promotion gates, written into the docs.

`python -m tools.experiments_aa` prints the figures; `--write docs/experiments.md` replaces the
block between the `<!-- aa-figures:start -->` and `<!-- aa-figures:end -->` markers with them
(`make experiments-aa`), so the figures in the docs are always the command's output.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from gateway.experiments.sequential import AAResult, simulate_aa

START, END = "<!-- aa-figures:start -->", "<!-- aa-figures:end -->"
EXPERIMENTS, LOOKS, PER_LOOK = 2000, 20, 50


def _row(label: str, r: AAResult, cand: float) -> str:
    return (
        f"| {label} | {r.rate:g} | {cand:g} | {r.sequential_false_breach:.4f} | "
        f"{r.fixed_false_breach:.4f} | {r.fixed_single_look:.4f} |"
    )


def figures() -> str:
    """The markdown block: the command, then one row per simulated setting."""
    lines = [
        f"`python -m tools.experiments_aa --write docs/experiments.md`: {EXPERIMENTS:,} "
        f"experiments per row, the harm gate (margin 0) looked at {LOOKS} times, after every "
        f"{PER_LOOK} requests per arm (up to {LOOKS * PER_LOOK:,} per arm), alpha 0.05, seed 0.",
        "",
        "| experiment | control rate | candidate rate | anytime-valid: share breached | "
        "fixed-horizon, every look | fixed-horizon, last look only |",
        "|---|---|---|---|---|---|",
    ]
    for rate in (0.01, 0.05, 0.2):
        r = simulate_aa(EXPERIMENTS, LOOKS, PER_LOOK, rate)
        lines.append(_row("A/A (false breach)", r, rate))
    for rate, cand in ((0.05, 0.08), (0.05, 0.10), (0.05, 0.15)):
        r = simulate_aa(EXPERIMENTS, LOOKS, PER_LOOK, rate, candidate_rate=cand)
        lines.append(_row("worse candidate (power)", r, cand))
    return "\n".join(lines)


def write(path: Path, block: str) -> None:
    text = path.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no {START} ... {END} block to replace")
    path.write_text(pattern.sub(lambda _: f"{START}\n{block}\n{END}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="Markdown file with the marked block.")
    args = parser.parse_args(argv)
    block = figures()
    if args.write is None:
        sys.stdout.write(block + "\n")
    else:
        write(args.write, block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
