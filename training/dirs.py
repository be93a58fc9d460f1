"""Directory moves shared by the trainers and the baseline installer (no training library
imported, so `serve` can use it in its own process)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def swap_dir(new: Path, target: Path) -> None:
    """Move directory `new` to `target`, replacing an existing `target`."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
        os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        if not target.exists() and old is not None:
            os.rename(old, target)  # put the previous model back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
