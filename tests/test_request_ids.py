"""Request ids: 32 hex digits, distinct within a process and across forked workers."""

from __future__ import annotations

import multiprocessing
import re

from gateway.request.classify import new_request_id


def _ids(n: int) -> list[str]:
    return [new_request_id() for _ in range(n)]


def test_ids_are_32_hex_digits_and_distinct_in_and_across_forked_processes() -> None:
    mine = _ids(20_000)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in mine)
    assert len(set(mine)) == len(mine)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        theirs = pool.map(_ids, [1_000, 1_000])
    every = mine + theirs[0] + theirs[1]
    assert len(set(every)) == len(every)  # a forked worker does not repeat its parent's ids
