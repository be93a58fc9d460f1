"""Derived figures of a benchmark run (overhead over direct, gateway/LiteLLM ratios, the
gateway's targets) and its markdown rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Point = dict[str, Any]

# The gateway's targets: (name, point selector, field, limit, "max" or "min").
TARGETS: tuple[tuple[str, int | None, str, float, str], ...] = (
    ("overhead p50 at c=1 ≤ 1 ms", 1, "overhead_p50_ms", 1.0, "max"),
    ("overhead p50 at c=64 ≤ 3 ms", 64, "overhead_p50_ms", 3.0, "max"),
    ("overhead p99 at c=64 ≤ 5 ms", 64, "overhead_p99_ms", 5.0, "max"),
    ("≥ 2,500 req/s at c=256", 256, "rps", 2500.0, "min"),
    ("no errors at c=256", 256, "errors", 0.0, "max"),
)
READY_LIMIT_S = 1.5
RSS_LIMIT_MB = 150.0


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def add_overheads(points: list[Point]) -> None:
    """Set overhead_p50_ms / overhead_p99_ms of each point: minus the direct point's value at
    the same concurrency (None where there is no direct point)."""
    direct = {p["concurrency"]: p for p in points if p["target"] == "direct"}
    for p in points:
        base = direct.get(p["concurrency"])
        p["overhead_p50_ms"] = _diff(p["p50_ms"], base["p50_ms"]) if base else None
        p["overhead_p99_ms"] = _diff(p["p99_ms"], base["p99_ms"]) if base else None


RATIO_FIELDS = ("rps", "p50_ms", "p99_ms", "overhead_p50_ms", "cpu_ms_per_req", "peak_rss_mb")


def ratios(points: list[Point], servers: dict[str, Any]) -> list[Point]:
    """gateway ÷ LiteLLM per concurrency (above 1 for req/s is better, below 1 for the rest)."""
    by = {(p["target"], p["concurrency"]): p for p in points}
    out = []
    for (target, c), gw in sorted(by.items(), key=lambda kv: kv[0][1]):
        lite = by.get(("litellm", c))
        if target != "gateway" or lite is None:
            continue
        row: Point = {"concurrency": c}
        row.update({f: _ratio(gw.get(f), lite.get(f)) for f in RATIO_FIELDS})
        out.append(row)
    if out:
        ready = _ratio(servers["gateway"].get("ready_s"), servers["litellm"].get("ready_s"))
        out.append({"concurrency": "ready", "ready_s": ready})
    return out


def evaluate_targets(points: list[Point], servers: dict[str, Any]) -> list[Point]:
    gw = {p["concurrency"]: p for p in points if p["target"] == "gateway"}
    checks: list[Point] = []
    for name, c, fld, limit, kind in TARGETS:
        value = gw[c].get(fld) if c in gw else None
        checks.append(_check(name, value, limit, kind))
    if "gateway" in servers:
        checks.append(
            _check("ready ≤ 1.5 s", servers["gateway"].get("ready_s"), READY_LIMIT_S, "max")
        )
    if gw:
        rss = max(p["peak_rss_mb"] for p in gw.values())
        checks.append(_check("RSS ≤ 150 MB", rss, RSS_LIMIT_MB, "max"))
    return checks


def _check(name: str, value: float | None, limit: float, kind: str) -> Point:
    if value is None:
        return {"target": name, "value": None, "met": None}
    met = value <= limit if kind == "max" else value >= limit
    return {"target": name, "value": value, "met": met}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _section(title: str, body: list[str]) -> list[str]:
    return ["", f"### {title}", "", *body]


def _points_table(points: list[Point], servers: dict[str, Any]) -> list[str]:
    headers = ["server", "c", "req/s", "p50 ms", "p90 ms", "p99 ms", "+p50 ms", "+p99 ms"]
    headers += ["CPU ms/req", "peak RSS MB", "ready s", "errors"]
    rows = [
        [
            p["target"],
            p["concurrency"],
            p["rps"],
            p["p50_ms"],
            p["p90_ms"],
            p["p99_ms"],
            p["overhead_p50_ms"],
            p["overhead_p99_ms"],
            p["cpu_ms_per_req"],
            p["peak_rss_mb"],
            servers.get(p["target"], {}).get("ready_s"),
            p["errors"],
        ]
        for p in points
    ]
    return _table(headers, rows)


def _render(results: dict[str, Any], key: str, render: Callable[[Any], list[str]]) -> list[str]:
    value = results.get(key)
    return render(value) if value else []


def markdown(results: dict[str, Any]) -> str:
    meta, servers, points = results["meta"], results["servers"], results["points"]
    lines = [f"## Benchmark ({meta['mode']}, {meta['note']})"]
    lines += _section("Servers under load", _points_table(points, servers))
    skipped = [f"- {name}: {s['skipped']}" for name, s in servers.items() if s.get("skipped")]
    lines += ["", *skipped] if skipped else []
    lines += _render(results, "ratios", _ratios_lines)
    lines += _render(results, "local", _local_lines)
    lines += _render(results, "workers", _workers_lines)
    lines += _render(results, "soak", _soak_lines)
    lines += _render(results, "targets", _targets_lines)
    return "\n".join(lines) + "\n"


def _ratios_lines(rows: list[Point]) -> list[str]:
    headers = ["c", "req/s", "p50", "p99", "+p50", "CPU/req", "peak RSS"]
    body = [[r["concurrency"], *(r[f] for f in RATIO_FIELDS)] for r in rows if "rps" in r]
    ready = [r["ready_s"] for r in rows if "ready_s" in r]
    extra = ["", f"time to ready, gateway ÷ LiteLLM: {_fmt(ready[0], 3)}"] if ready else []
    return _section("gateway ÷ LiteLLM proxy", _table(headers, body) + extra)


def _local_lines(local: dict[str, Any]) -> list[str]:
    lines = []
    if "in_process" in local:
        ip = local["in_process"]
        lines.append(
            f"in process: {ip['calls']} predictions, p50 {_fmt(ip['p50_ms'], 3)} ms, "
            f"p99 {_fmt(ip['p99_ms'], 3)} ms (train {_fmt(ip['train_s'])} s, "
            f"load {_fmt(ip['load_s'], 3)} s)"
        )
    if "http" in local:
        lines += ["", f"HTTP (POST /v1/classify, default local routes; ready "
                      f"{_fmt(local.get('ready_s'))} s):", ""]  # fmt: skip
        rows = [
            [
                p["concurrency"],
                p["rps"],
                p["p50_ms"],
                p["p99_ms"],
                p["cpu_ms_per_req"],
                p["peak_rss_mb"],
                p["errors"],
            ]
            for p in local["http"]
        ]
        lines += _table(["c", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "RSS MB", "errors"], rows)
    return _section("Local model path", lines)


def _workers_lines(rows: list[Point]) -> list[str]:
    headers = ["workers", "c", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "RSS MB", "ready s"]
    headers.append("errors")
    body = [
        [
            r["workers"],
            r["concurrency"],
            r["rps"],
            r["p50_ms"],
            r["p99_ms"],
            r["cpu_ms_per_req"],
            r["peak_rss_mb"],
            r["ready_s"],
            r["errors"],
        ]
        for r in rows
    ]
    note = ["", "(gateway not pinned here: its workers may use both cores, shared with the "
                "load generator and the simulator)"]  # fmt: skip
    return _section("Gateway workers: 1 vs 2", _table(headers, body) + note)


def _soak_lines(soak: dict[str, Any]) -> list[str]:
    line = (
        f"{soak['requests']:,} of {soak['planned']:,} requests ({soak['kind']}) at "
        f"c={soak['concurrency']}: {_fmt(soak['rps'], 0)} req/s, {soak['errors']} errors, "
        f"p50 {_fmt(soak['p50_ms'])} ms, p99 {_fmt(soak['p99_ms'])} ms; gateway RSS "
        f"{_fmt(soak['rss_start_mb'], 1)} MB at start, {_fmt(soak['rss_warm_mb'], 1)} MB after "
        f"the first tenth, {_fmt(soak['rss_end_mb'], 1)} MB at the end "
        f"(peak {_fmt(soak['vmhwm_mb'], 1)} MB)"
    )
    return _section("Soak", [line])


def _targets_lines(rows: list[Point]) -> list[str]:
    body = [[r["target"], r["value"], "–" if r["met"] is None else r["met"]] for r in rows]
    return _section("Gateway targets", _table(["target", "measured", "met"], body))
