"""Small inline-SVG charts (no JavaScript, no external assets): a latency series across releases with the points
that violate the regression rule drawn in red."""

from __future__ import annotations

from html import escape


def series_svg(title: str, labels: list[str], values: list[float], flags: list[bool], unit: str,
               regression: bool, width: int = 560, height: int = 230) -> str:
    left, right, top, bottom = 56, 16, 28, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or abs(hi) * 0.1 or 1.0
    lo, hi = max(0.0, lo - pad), hi + pad

    def x(i: int) -> float:
        return left + (plot_w * i / (len(values) - 1) if len(values) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" class="chart-title">{escape(title)}'
             f'{" — REGRESSION" if regression else ""}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:.3g}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" class="tick" transform="rotate(-90 12 '
                 f'{top + plot_h / 2:.1f})" text-anchor="middle">{escape(unit)}</text>')
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{points}" class="line{" regressed" if regression else ""}"/>')
    for i, (label, v, bad) in enumerate(zip(labels, values, flags)):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" class="{"violation" if bad else "point"}">'
                     f'<title>{escape(label)}: {v:.4g} {escape(unit)}{" (violates)" if bad else ""}</title></circle>')
        parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" class="tick" text-anchor="end" '
                     f'transform="rotate(-30 {x(i):.1f} {top + plot_h + 16})">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
