"""Measured blocks inside hand-written docs: a benchmark rewrites the text between its
`<!-- name:begin -->` and `<!-- name:end -->` markers and leaves the rest of the page alone."""

from __future__ import annotations

from pathlib import Path

__all__ = ["markers", "write_block"]


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of the block `name`."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def write_block(path: Path, block: str, begin: str, end: str) -> None:
    """Replace the block of `path` between `begin` and `end`, markers included (`block` carries
    its own); append it when the page has none."""
    text = path.read_text(encoding="utf-8")
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
