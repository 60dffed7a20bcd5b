"""Inline-SVG chart of one sustained run (`device time --duration`): the median latency of each window against the
time at its end, each point coloured by the window's thermal state, with the first window's median as a dashed
reference line (no JavaScript, no external assets)."""

from __future__ import annotations

from html import escape

THERMAL_COLOURS = {"nominal": "#1a7f37", "fair": "#bf8700", "serious": "#d1600b", "critical": "#cf222e",
                   "unknown": "#6e7781"}


def sustained_svg(title: str, windows: list[dict], unit: str = "ms", width: int = 560, height: int = 230) -> str:
    """`windows`: the record's [{t_s, median_ms, thermal_state, start, end}, ...] in time order."""
    left, right, top, bottom = 56, 16, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [float(w["t_s"]) for w in windows]
    values = [float(w["median_ms"]) for w in windows]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or abs(hi) * 0.1 or 1.0
    lo, hi = max(0.0, lo - pad), hi + pad
    t_max = max(times) or 1.0

    def x(t: float) -> float:
        return left + plot_w * t / t_max

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart sustained" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.3g}</text>')
        parts.append(f'<text x="{x(t_max * frac):.1f}" y="{top + plot_h + 16}" class="tick" '
                     f'text-anchor="middle">{t_max * frac:.3g}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="tick" text-anchor="middle">'
                 f'seconds since the first timed prediction</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" class="tick" transform="rotate(-90 12 '
                 f'{top + plot_h / 2:.1f})" text-anchor="middle">{escape(unit)} (window median)</text>')
    parts.append(f'<line x1="{left}" y1="{y(values[0]):.1f}" x2="{left + plot_w}" y2="{y(values[0]):.1f}" '
                 f'stroke="#8c959f" stroke-dasharray="4 3" class="reference"/>')
    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values))
    parts.append(f'<polyline points="{points}" class="line" fill="none" stroke="#0969da"/>')
    for w, t, v in zip(windows, times, values):
        state = str(w.get("thermal_state", "unknown"))
        colour = THERMAL_COLOURS.get(state, THERMAL_COLOURS["unknown"])
        n = int(w["end"]) - int(w["start"])
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}" class="window" '
                     f'data-thermal="{escape(state)}"><title>until {t:.1f} s: {v:.4g} {escape(unit)} median of '
                     f'{n} predictions, thermal {escape(state)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
