"""Derived figures of a benchmark run (overhead over direct, gateway/LiteLLM ratios, the
gateway's targets) and its markdown rendering."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

Point = dict[str, Any]

# Issue-16 goals that read one gateway point: (name, concurrency, field, limit, "max"/"min").
POINT_GOALS: tuple[tuple[str, int, str, float, str], ...] = (
    ("overhead p50 at c=1 ≤ 1.0 ms", 1, "overhead_p50_ms", 1.0, "max"),
    ("overhead p50 at c=64 ≤ 3 ms", 64, "overhead_p50_ms", 3.0, "max"),
    ("p99 at c=64 ≤ upstream p99 + 10 ms (overhead p99 ≤ 10 ms)", 64, "overhead_p99_ms", 10.0,
     "max"),
    ("no errors at c=256", 256, "errors", 0.0, "max"),
)  # fmt: skip
RSS_LIMIT_MB = 120.0
RSS_GROWTH_MB = 10.0
READY_WARM_S = 1.0
READY_FIRST_S = 2.0
LOCAL_RPS = 2000.0
LOCAL_P50_MS = 1.0


def _generator(meta: dict[str, Any]) -> str:
    if meta.get("generator") == "wrk":
        return "closed loop from wrk (one thread; the soak uses the aiohttp loop)"
    most = meta["max_requests_per_point"]
    return f"closed loop (aiohttp; wrk not installed), at most {most:,} requests"


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
    """gateway ÷ each other server per concurrency (above 1 for req/s is better, below 1 for
    the rest), then max req/s and time to ready."""
    by = {(p["target"], p["concurrency"]): p for p in points}
    out: list[Point] = []
    for base in ("direct", "passthrough", "litellm"):
        if not any(t == base for t, _ in by):
            continue
        for (target, c), gw in sorted(by.items(), key=lambda kv: kv[0][1]):
            other = by.get((base, c))
            if target != "gateway" or other is None:
                continue
            row: Point = {"vs": base, "concurrency": c}
            row.update({f: _ratio(gw.get(f), other.get(f)) for f in RATIO_FIELDS})
            out.append(row)
        ready = _ratio(servers.get("gateway", {}).get("ready_s"), servers[base].get("ready_s"))
        best = _ratio(max_rps(points, "gateway"), max_rps(points, base))
        out.append({"vs": base, "concurrency": "max", "rps": best, "ready_s": ready})
    return out


def max_rps(points: list[Point], target: str) -> float | None:
    values = [p["rps"] for p in points if p["target"] == target and p["requests"] > 0]
    return max(values) if values else None


def evaluate_targets(results: dict[str, Any]) -> list[Point]:
    """Every goal, met or missed from its measured figure (None: not measured in this run)."""
    points: list[Point] = results.get("points", [])
    servers: dict[str, Any] = results.get("servers", {})
    gw_rps = max_rps(points, "gateway")
    checks = [
        _check("max req/s ≥ 0.5× upstream called directly",
               _ratio(gw_rps, max_rps(points, "direct")), 0.5, "min"),
        _check("max req/s ≥ 1.2× minimal FastAPI + aiohttp passthrough",
               _ratio(gw_rps, max_rps(points, "passthrough")), 1.2, "min"),
    ]  # fmt: skip
    gw = {p["concurrency"]: p for p in points if p["target"] == "gateway"}
    for name, c, fld, limit, kind in POINT_GOALS:
        checks.append(_check(name, gw[c].get(fld) if c in gw else None, limit, kind))
    litellm = _ratio(gw_rps, max_rps(points, "litellm"))
    checks.append(_check("max req/s ≥ 30× LiteLLM proxy", litellm, 30, "min"))
    soak = results.get("soak") or {}
    label = f"after {soak.get('requests', 0):,} requests" if soak else "after the soak"
    checks.append(_check(f"RSS ≤ 120 MB {label}", soak.get("rss_end_mb"), RSS_LIMIT_MB, "max"))
    growth = _diff(soak.get("rss_end_mb"), soak.get("rss_warm_mb"))
    checks.append(_check("RSS flat: ≤ +10 MB after warm-up", growth, RSS_GROWTH_MB, "max"))
    gateway = servers.get("gateway", {})
    checks.append(_check("ready ≤ 2.0 s, very first start", gateway.get("ready_s"),
                         READY_FIRST_S, "max"))  # fmt: skip
    checks.append(_check("ready ≤ 1.0 s, warm start", gateway.get("ready_warm_s"),
                         READY_WARM_S, "max"))  # fmt: skip
    imports = results.get("imports")
    mapped = gateway.get("heavy_mapped", [])  # loaded by the running server (shared objects)
    heavy = None if imports is None else float(len({*imports.get("heavy", []), *mapped}))
    checks.append(
        _check(
            "server import (and the running server) loads no scikit-learn, torch, litellm",
            heavy,
            0,
            "max",
        )
    )
    local = results.get("local") or {}
    local_rps = max((p["rps"] for p in local.get("http", [])), default=None)
    checks.append(_check("local path ≥ 2,000 req/s via /v1/classify", local_rps, LOCAL_RPS, "min"))
    p50 = (local.get("in_process") or {}).get("p50_ms")
    checks.append(_check("local in-process predict p50 ≤ 1 ms", p50, LOCAL_P50_MS, "max"))
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
    lines += _render(results, "imports", _imports_lines)
    lines += _render(results, "servers", _start_lines)
    lines += _render(results, "targets", _targets_lines)
    return "\n".join(lines) + "\n"


def _ratios_lines(rows: list[Point]) -> list[str]:
    headers = ["gateway ÷", "c", "req/s", "p50", "p99", "+p50", "CPU/req", "peak RSS", "ready"]
    body = [
        [r["vs"], r["concurrency"], *(r.get(f) for f in RATIO_FIELDS), r.get("ready_s")]
        for r in rows
    ]
    return _section("Ratios: gateway ÷ the others (same run)", _table(headers, body))


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


def _start_lines(servers: dict[str, Any]) -> list[str]:
    gw = servers.get("gateway") or {}
    if gw.get("ready_warm_s") is None:
        return []
    return _section(
        "Time to ready (gateway)",
        [f"first start {_fmt(gw.get('ready_s'))} s; warm start (the model built) "
         f"{_fmt(gw['ready_warm_s'])} s, after the load points, with the OS page cache as "
         f"they left it; the same start again at once, its files just read, "
         f"{_fmt(gw.get('ready_warm_again_s'))} s. The goal is judged on the warm start."],
    )  # fmt: skip


def _imports_lines(imports: dict[str, Any]) -> list[str]:
    heavy = ", ".join(imports.get("heavy", [])) or "none"
    return _section(
        "Server import",
        [f"`import gateway.api.asgi` + `create_app`: {_fmt(imports.get('import_s'), 2)} s, "
         f"heavy modules loaded: {heavy}"],
    )  # fmt: skip


def _targets_lines(rows: list[Point]) -> list[str]:
    def verdict(met: bool | None) -> str:
        return "not measured" if met is None else "met" if met else "MISSED"

    body = [[r["target"], r["value"], verdict(r["met"])] for r in rows]
    return _section("Goals (issue 16)", _table(["goal", "measured", "verdict"], body))


def document(results: dict[str, Any], command: str) -> str:
    """docs/benchmarks.md: how the figures were made, then the run's own summary."""
    meta = results["meta"]
    goals = results.get("targets", [])
    met = sum(1 for g in goals if g["met"])
    missed = [g["target"] for g in goals if g["met"] is False]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`loadtest/bench.py`) from its own run; do not edit by hand.",
        "Absolute figures move with the machine and its load; the ratios, measured in one run,",
        "are what to compare.",
        "",
        f"- command: `{command}`",
        f"- machine: {meta.get('machine', '?')}; {meta['cpus']} CPUs; Python {meta['python']}",
        f"- run: {meta['started_at']}, {meta['mode']} mode, {meta['wall_s']} s; {meta['note']}",
        f"- load: {_generator(meta)}, {meta['duration_s_per_point']} s per point; upstream "
        "simulator with a "
        f"fixed {meta['upstream_latency_ms']:g} ms latency; load average at the end "
        f"{', '.join(f'{x:.2f}' for x in meta['loadavg_at_end'])}",
        "- gateway: `triage-gateway serve` on `examples/ab-simulator.yaml` (control, candidate "
        "and a `local` fallback variant), pair log, metrics and access log on",
        "- passthrough: `loadtest/passthrough.py`, FastAPI + uvicorn + one aiohttp session, "
        "no logging, no metrics",
        "",
        f"Goals met: {met} of {len(goals)}"
        + (f"; missed: {'; '.join(missed)}." if missed else "."),
        "",
    ]
    return "\n".join(lines) + markdown(results).split("\n", 1)[1]


HPA_CORE = 0.35
"""A pod's average CPU at the HPA target (70 % of its 500m request; k8s/base/gateway-hpa.yaml)."""
PROD_FLOOR_PODS = 3
SCALING_LOADS = (100, 1_000, 10_000)
"""Loads (req/s) of the worked example in docs/scaling.md."""
FULL_CORE = 0.9
"""Below this share of a core at its fastest point, a server's R is extrapolated."""


def _max_point(points: Iterable[Point]) -> Point | None:
    usable = [p for p in points if p["rps"] > 0 and p["cpu_ms_per_req"] > 0]
    return max(usable, key=lambda p: p["rps"], default=None)


def scaling_block(results: dict[str, Any], command: str, begin: str, end: str) -> str:
    """docs/scaling.md's measured block: R, the req/s one fully used core carries (1000 / the
    CPU ms per request at the server's fastest point), on the hosted path and on the local
    path, the memory a replica needs, and the pods a few loads need at the HPA target, from
    this run's own figures; with a warning where the run does not support the figure."""
    meta = results["meta"]
    chat = _max_point(p for p in results["points"] if p["target"] == "gateway")
    local = _max_point((results.get("local") or {}).get("http", []))
    soak = results.get("soak") or {}
    lines = [
        begin,
        f"Measured by `make bench` (`{command}`) on {meta.get('machine', '?')}, "
        f"{meta['cpus']} CPUs, {meta['started_at'][:10]}; {meta['note']}; upstream simulator "
        f"answering in {meta['upstream_latency_ms']:g} ms. Full results: "
        "[benchmarks.md](benchmarks.md).",
        "",
    ]
    paths = [("hosted models (`POST /v1/chat/completions`)", chat),
             ("local model (`POST /v1/classify`, baseline)", local)]  # fmt: skip
    measured = [(name, p, 1000.0 / p["cpu_ms_per_req"]) for name, p in paths if p is not None]
    if not measured:
        return "\n".join([*lines, "No gateway point was measured.", end])
    rows = [
        [name, p["rps"], p["concurrency"], p["cpu_ms_per_req"],
         round(p["rps"] * p["cpu_ms_per_req"] / 1000, 2), round(r), round(HPA_CORE * r)]
        for name, p, r in measured
    ]  # fmt: skip
    lines += _table(["path", "req/s at its fastest", "at c", "CPU ms/req", "cores used",
                     "R: req/s per full core", f"per pod at the HPA target ({HPA_CORE} core)"],
                    rows)  # fmt: skip
    warnings = []
    if not meta["pinned"]:
        warnings.append("the server was not pinned to a core, so its CPU per request (and R) "
                        "may include contention with the load generator")  # fmt: skip
    if meta.get("mode") == "quick":
        warnings.append("a quick run (a few hundred requests per point): not figures to plan with")
    for name, p, _ in measured:
        used = p["rps"] * p["cpu_ms_per_req"] / 1000
        if used < FULL_CORE:
            warnings.append(f"{name.split(' (')[0]} used {used:.2f} of a core at its fastest "
                            "point: its R is extrapolated from the CPU per request")  # fmt: skip
    lines += ["", *[f"**Note:** {w}." for w in warnings]] if warnings else []
    rss = [p["peak_rss_mb"] for p in results["points"] if p["target"] == "gateway"]
    rss += [p["peak_rss_mb"] for p in (results.get("local") or {}).get("http", [])]
    memory = f"peak RSS under load {_fmt(max(rss, default=None))} MB"
    if soak:
        memory += f", {_fmt(soak.get('rss_end_mb'))} MB after {soak.get('requests', 0):,} requests"
    lines += ["", f"Memory per replica: {memory} (the pod's limit is 512 Mi).", ""]
    loads = [
        [f"{load:,}", name, round(load / r, 2),
         max(PROD_FLOOR_PODS, math.ceil(load / (HPA_CORE * r)))]
        for load in SCALING_LOADS
        for name, _, r in measured
    ]  # fmt: skip
    lines += _table(["load req/s", "path", "busy cores (L / R)",
                     f"pods (prod, at least {PROD_FLOOR_PODS})"], loads)  # fmt: skip
    return "\n".join([*lines, end])
