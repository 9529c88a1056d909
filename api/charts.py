"""Numbers → small SVG charts drawn on the server (no chart library in the browser, nothing from a CDN)."""

from __future__ import annotations

from html import escape
from typing import Any

COLOURS = {"widget": "#b3261e", "api": "#6d4c41", "telegram": "#1e88e5", "zalo": "#0068ff"}


def stacked_days(
    rows: list[dict[str, Any]], channels: list[str], *, width: int = 720, height: int = 180
) -> str:
    """Questions per day, one bar a day, stacked by channel, with a legend."""
    top = max((r["total"] for r in rows), default=0) or 1
    left, bottom, legend = 32, 22, 18
    plot_h = height - bottom - legend
    step = (width - left) / max(len(rows), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'class="chart" aria-label="questions per day">']  # fmt: skip
    parts.append(f'<text x="0" y="{legend + 10}" font-size="10">{top}</text>')
    parts.append(f'<text x="0" y="{height - bottom}" font-size="10">0</text>')
    for i, row in enumerate(rows):
        x = left + i * step
        y = legend + plot_h
        for channel in channels:
            n = row.get(channel, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS.get(channel, "#888")}"><title>{escape(row["day"])} {escape(channel)}: '
                         f"{n}</title></rect>")  # fmt: skip
        if i % max(len(rows) // 6, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="10">{escape(row["day"][5:])}</text>')
    x = left
    for channel in channels:
        parts.append(f'<rect x="{x}" y="2" width="10" height="10" fill="{COLOURS.get(channel, "#888")}"/>'
                     f'<text x="{x + 14}" y="11" font-size="11">{escape(channel)}</text>')  # fmt: skip
        x += 90
    parts.append("</svg>")
    return "".join(parts)
