"""`archive` and `restore`: pairs past the hot window and every correction to Parquet (a
directory or fsspec URL, `GATEWAY_ARCHIVE_URL`), and Redis rebuilt from it."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from cli.app import fail, store_settings

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds of `90s`, `30m`, `48h`, `7d` (a bare number is seconds)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"duration {text!r}: give a number with s, m, h or d (e.g. 48h)")
    return float(match[1]) * _UNIT_S[match[2]]


def archive(
    older_than: Annotated[
        str | None,
        typer.Option(help="Move pairs older than this (e.g. 48h, 7d); GATEWAY_PAIR_HOT_HOURS."),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Archive directory or URL; GATEWAY_ARCHIVE_URL.")
    ] = None,
) -> None:
    """Move pairs past the hot window from Redis to the Parquet archive (written first, then
    trimmed), write the waiting corrections through and snapshot registry and weights."""
    import orjson

    from gateway.infra import redis_keys
    from gateway.infra.redis_client import run_with_redis
    from gateway.pairs import archive as store

    config = store_settings()
    url = to or config.archive_url
    if not url:
        raise fail("no archive: pass --to or set GATEWAY_ARCHIVE_URL")
    try:
        age_s = parse_duration(older_than) if older_than else config.pair_hot_hours * 3600
    except ValueError as exc:
        raise fail(str(exc)) from None
    if older_than is None and config.pair_hot_hours <= 0:
        raise fail("no hot window: pass --older-than or set GATEWAY_PAIR_HOT_HOURS")
    stream = redis_keys.pairs_stream(config.pairs_stream)

    async def work(redis: Any) -> dict[str, Any]:
        fixes = await store.flush_corrections(redis, url)
        await store.snapshot_state(redis, url)
        moved = await store.archive_pairs(redis, stream, url, age_s)
        return {**moved.to_dict(), "corrections": fixes}

    result = run_with_redis(config.model_copy(update={"archive_url": url}), work)
    typer.echo(orjson.dumps(result).decode())


def restore(
    source: Annotated[str, typer.Option("--from", help="Archive directory or URL.")],
) -> None:
    """Rebuild corrections, model registry, weights and weights history from the archive
    into an empty Redis."""
    import orjson

    from gateway.infra.redis_client import run_with_redis
    from gateway.pairs import archive as store

    config = store_settings()

    async def work(redis: Any) -> dict[str, int]:
        return (await store.restore(redis, source)).to_dict()

    try:
        result = run_with_redis(config, work)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    typer.echo(orjson.dumps(result).decode())


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(archive)
    app.command()(restore)
