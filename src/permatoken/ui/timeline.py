"""The 90-day expiry timeline as an inline SVG, drawn on the server. Pure: data in, markup out.

Two series per day (current versions expiring, renewals planned) as bars, then one lane per
credential of the page: a line from now to its expiry with a dot at its planned renewal. Text is
escaped; the SVG carries a ``<title>`` and ``<desc>`` for screen readers, and colours come from
CSS classes so that dark mode applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

from ..store.ui_queries import FleetRow

WIDTH = 900
CHART_H = 90
LANE_H = 16
LEFT = 170


def _x(day: float, days: int) -> float:
    return LEFT + (WIDTH - LEFT - 10) * max(0.0, min(day, days)) / days


def draw(
    expiring: Sequence[int],
    renewing: Sequence[int],
    rows: Sequence[FleetRow],
    now: datetime,
) -> Markup:
    days = len(expiring) or 90
    peak = max([1, *expiring, *renewing])
    lanes = [r for r in rows][:25]
    height = CHART_H + 30 + LANE_H * len(lanes) + 10
    bar = (WIDTH - LEFT - 10) / days
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="tl-title tl-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="tl-title">Expiries and planned renewals over the next {days} days</title>',
        f'<desc id="tl-desc">{sum(expiring)} tokens expire and {sum(renewing)} renewals are '
        f"planned in the next {days} days.</desc>",
    ]
    for d in range(days):
        for i, (series, cls) in enumerate(((expiring, "exp"), (renewing, "ren"))):
            n = series[d] if d < len(series) else 0
            if not n:
                continue
            h = max(2.0, (CHART_H - 10) * n / peak)
            x = _x(d, days) + i * bar / 2
            parts.append(
                f'<rect class="{cls}" x="{x:.1f}" y="{CHART_H - h:.1f}" '
                f'width="{max(1.0, bar / 2 - 0.5):.1f}" height="{h:.1f}">'
                f"<title>day {d}: {n} {'expiring' if cls == 'exp' else 'renewals planned'}</title></rect>"
            )
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{CHART_H}" x2="{WIDTH - 10}" y2="{CHART_H}"/>'
    )
    for d in range(0, days + 1, 15):
        parts.append(
            f'<text class="tick" x="{_x(d, days):.1f}" y="{CHART_H + 14}" text-anchor="middle">'
            f"{'today' if d == 0 else f'+{d} d'}</text>"
        )
    parts.append(
        f'<text class="legend" x="4" y="14"><tspan class="exp-t">■</tspan> expiring</text>'
        f'<text class="legend" x="4" y="30"><tspan class="ren-t">■</tspan> renewal planned</text>'
        f'<text class="legend" x="4" y="46">peak {peak}/day</text>'
    )
    y0 = CHART_H + 30
    for i, r in enumerate(lanes):
        y = y0 + i * LANE_H
        label = escape(r.name if len(r.name) <= 26 else r.name[:25] + "…")
        parts.append(f'<text class="lane" x="4" y="{y + 11}">{label}</text>')
        end = (r.expires_at - now).total_seconds() / 86400 if r.expires_at is not None else days
        parts.append(
            f'<line class="life {escape(r.health)}" x1="{_x(0, days):.1f}" y1="{y + 7}" '
            f'x2="{_x(end, days):.1f}" y2="{y + 7}"><title>{escape(r.name)}: '
            f"{'never expires' if r.expires_at is None else 'expires in ' + format(end, '.1f') + ' days'}"
            "</title></line>"
        )
        if r.next_action == "renew" and r.next_due_at is not None:
            due = (r.next_due_at - now).total_seconds() / 86400
            parts.append(
                f'<circle class="due" cx="{_x(due, days):.1f}" cy="{y + 7}" r="4">'
                f"<title>{escape(r.name)}: renewal planned in {max(0.0, due):.1f} days</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


__all__ = ["draw"]
