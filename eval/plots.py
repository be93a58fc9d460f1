"""Inline SVG charts for the eval report: no plotting library, no external files.

Every label that comes from data (variant and class names) goes through `escape`, and the
functions return `Markup` so the report template inserts them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#edc948")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    x: float
    y: float
    y_lo: float | None = None
    y_hi: float | None = None


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" {_FONT}>'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, s: object, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {extra}>{escape(str(s))}</text>'


def confusion_svg(conf: dict[str, Any], title: str) -> Markup:
    """Gold classes as rows, predictions as columns; shade = share of the row."""
    rows: list[str] = conf["rows"]
    cols: list[str] = conf["columns"]
    matrix: list[list[int]] = conf["matrix"]
    cell, left, top = 46, 130, 96
    width, height = left + cell * len(cols) + 10, top + cell * len(rows) + 28
    body = [_text(left, 14, title, 'font-weight="600"')]
    for j, name in enumerate(cols):
        x = left + j * cell + cell / 2
        body.append(_text(x, top - 6, name, f'transform="rotate(-40 {x:.1f} {top - 6})"'))
    for i, (name, counts) in enumerate(zip(rows, matrix, strict=True)):
        y = top + i * cell
        body.append(_text(left - 6, y + cell / 2 + 4, name, 'text-anchor="end"'))
        total = sum(counts) or 1
        for j, count in enumerate(counts):
            x = left + j * cell
            share = count / total
            fill = "#2e7d32" if cols[j] == name else "#4e79a7"
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}" '
                f'fill-opacity="{0.08 + 0.85 * share:.3f}"><title>{escape(name)} → '
                f"{escape(cols[j])}: {count}</title></rect>"
            )
            ink = "#fff" if share > 0.55 else "#222"
            body.append(
                _text(
                    x + cell / 2 - 1, y + cell / 2 + 4, count, f'text-anchor="middle" fill="{ink}"'
                )
            )
    body.append(_text(left, height - 8, "rows: label · columns: answer", 'fill="#666"'))
    return _svg(width, height, title, body)


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def ecdf_svg(latencies: dict[str, list[float]], title: str) -> Markup:
    """Cumulative share of calls answered within x ms (log scale), one line per variant."""
    width, height, left, right, top, bottom = 640, 300, 50, 150, 24, 40
    values = [v for vs in latencies.values() for v in vs if v > 0]
    if not values:
        return _svg(width, 60, title, [_text(10, 30, "no latency data")])
    ticks = _log_ticks(min(values), max(values))
    lo, hi = math.log10(ticks[0]), math.log10(ticks[-1])
    span = (hi - lo) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + (math.log10(max(v, ticks[0])) - lo) / span * plot_w

    def py(share: float) -> float:
        return top + (1 - share) * plot_h

    body = [_text(left, 14, title, 'font-weight="600"')]
    body += _axes(left, top, plot_w, plot_h)
    for t in ticks:
        body.append(_text(px(t), top + plot_h + 16, f"{t:g} ms", 'text-anchor="middle"'))
    for share in (0, 0.25, 0.5, 0.75, 0.95):
        body.append(_text(left - 6, py(share) + 4, f"{share:g}", 'text-anchor="end"'))
        body.append(_gridline(left, py(share), left + plot_w, py(share)))
    for i, (name, vs) in enumerate(latencies.items()):
        ordered = sorted(v for v in vs if v > 0)
        if not ordered:
            continue
        pts = " ".join(
            f"{px(v):.1f},{py((k + 1) / len(ordered)):.1f}" for k, v in enumerate(ordered)
        )
        body.append(f'<polyline points="{pts}" fill="none" stroke="{color(i)}" stroke-width="2"/>')
        body += _legend(left + plot_w + 12, top + 14 * i, name, color(i))
    return _svg(width, height, title, body)


def scatter_svg(
    points: Sequence[Point],
    title: str,
    x_label: str,
    y_label: str,
    curve: Sequence[Point] = (),
) -> Markup:
    """Points with vertical interval bars (y in 0..1), and an optional connected curve."""
    width, height, left, right, top, bottom = 640, 320, 56, 150, 24, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p.x for p in (*points, *curve)] or [0.0]
    ys = [v for p in (*points, *curve) for v in (p.y, p.y_lo, p.y_hi) if v is not None] or [0.0]
    x_hi = max(xs) * 1.1 or 1.0
    y_lo, y_hi = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    y_span = (y_hi - y_lo) or 1.0

    def px(x: float) -> float:
        return left + x / x_hi * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / y_span) * plot_h

    body = [_text(left, 14, title, 'font-weight="600"')]
    body += _axes(left, top, plot_w, plot_h)
    for k in range(5):
        x, y = x_hi * k / 4, y_lo + y_span * k / 4
        body.append(_text(px(x), top + plot_h + 16, f"{x:.3g}", 'text-anchor="middle"'))
        body.append(_text(left - 6, py(y) + 4, f"{y:.2f}", 'text-anchor="end"'))
        body.append(_gridline(left, py(y), left + plot_w, py(y)))
    body.append(_text(left + plot_w / 2, height - 6, x_label, 'text-anchor="middle"'))
    body.append(
        _text(12, top + plot_h / 2, y_label, f'transform="rotate(-90 12 {top + plot_h / 2})"')
    )
    if curve:
        pts = " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in curve)
        body.append(f'<polyline points="{pts}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
        for p in curve:
            body.append(
                f'<circle cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="2.5" fill="#999">'
                f"<title>{escape(p.label)}</title></circle>"
            )
        body += _legend(left + plot_w + 12, top + 14 * len(points), "cascade sweep", "#999")
    for i, p in enumerate(points):
        if p.y_lo is not None and p.y_hi is not None:
            body.append(
                f'<line x1="{px(p.x):.1f}" x2="{px(p.x):.1f}" y1="{py(p.y_lo):.1f}" '
                f'y2="{py(p.y_hi):.1f}" stroke="{color(i)}" stroke-width="2"/>'
            )
        body.append(
            f'<circle cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="5" fill="{color(i)}">'
            f"<title>{escape(p.label)}</title></circle>"
        )
        body += _legend(left + plot_w + 12, top + 14 * i, p.label, color(i))
    return _svg(width, height, title, body)


def lines_svg(xs: Sequence[float], series: Mapping[str, Sequence[float]], title: str) -> Markup:
    """Lines over x in 0..1 with y in 0..1 (the cascade curve)."""
    width, height, left, right, top, bottom = 640, 280, 50, 150, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + x * plot_w

    def py(y: float) -> float:
        return top + (1 - y) * plot_h

    body = [_text(left, 14, title, 'font-weight="600"')]
    body += _axes(left, top, plot_w, plot_h)
    for k in range(5):
        v = k / 4
        body.append(_text(px(v), top + plot_h + 16, f"{v:g}", 'text-anchor="middle"'))
        body.append(_text(left - 6, py(v) + 4, f"{v:g}", 'text-anchor="end"'))
        body.append(_gridline(left, py(v), left + plot_w, py(v)))
    body.append(_text(left + plot_w / 2, height - 6, "threshold", 'text-anchor="middle"'))
    for i, (name, ys) in enumerate(series.items()):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
        body.append(f'<polyline points="{pts}" fill="none" stroke="{color(i)}" stroke-width="2"/>')
        body += _legend(left + plot_w + 12, top + 14 * i, name, color(i))
    return _svg(width, height, title, body)


def _axes(left: float, top: float, w: float, h: float) -> list[str]:
    return [
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>',
    ]


def _gridline(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#eee"/>'


def _legend(x: float, y: float, label: str, fill: str) -> list[str]:
    return [
        f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{fill}"/>',
        _text(x + 14, y + 9, label),
    ]
