"""The report's charts as static SVG, drawn with matplotlib: the same markup shows in a browser and prints
through WeasyPrint, with no script and nothing fetched.

Each clock gets its own row and its own time axis (a one-hour report clock beside a twenty-day order
would otherwise be a sliver). Text stays text (``svg.fonttype = "none"``) in DejaVu Sans, else Noto Sans
CJK: outlined glyphs made WeasyPrint's SVG drawing the slowest part of a PDF, and any sans-serif font
the reader has shows rule ids and dates well enough. Elements carry ids a test or a script can
count: ``clock-bar-<id>``, ``clock-met-<id>``, ``clock-missed-<id>``, ``now-line-<id>``,
``progress-<channel>``. A chart is drawn again only when what it shows changes: the current minute is
part of what a clock chart shows, so a page reloaded within the minute reuses the drawing.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from engine.report.gather import ChannelProgress, Clock

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["STATUS_COLOURS", "clock_chart", "progress_chart"]

STATUS_COLOURS = {
    "pending": "#4c78a8",
    "warned": "#f58518",
    "missed": "#d62728",
    "met": "#2ca02c",
    "waived": "#9d9d9d",
    "void": "#c7c7c7",
}
_CHANNEL_COLOURS = {"email": "#4c78a8", "sms": "#f58518", "post": "#54a24b", "public": "#b279a2"}
# matplotlib's figures are not safe to draw from several threads at once (the web server has a pool).
_DRAWING = threading.Lock()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# One clock as the chart needs it: id, rule, subject, status, start, due, met_at, missed_at.
_ClockKey = tuple[int, str, str, str, datetime, datetime, datetime | None, datetime | None]


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    # The figure's own SVG canvas (no pyplot, no global backend): the date is left out so the same data
    # gives the same bytes.
    figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    # Inline in HTML: the XML prolog and DOCTYPE are not allowed there.
    return text[text.index("<svg") :]


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "breach",  # stable element ids: the same data gives the same file
            "font.family": ["DejaVu Sans", "Noto Sans CJK SC"],
            "font.size": 8,
        }
    )
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96)


def _x(moment: datetime) -> float:
    """A moment as matplotlib's date number (days since 1970, UTC)."""
    return (moment - _EPOCH).total_seconds() / 86400


def _axis_range(clock: _ClockKey, now: datetime) -> tuple[datetime, datetime]:
    """The span a clock's row shows: its run, its ending, and now while it runs."""
    _, _, _, status, start, due, met_at, missed_at = clock
    moments = [start, due] + [m for m in (met_at, missed_at) if m is not None]
    if status in ("pending", "warned", "missed"):
        moments.append(now)
    low, high = min(moments), max(moments)
    pad = max((high - low) * 0.06, timedelta(minutes=5))
    return low - pad, high + pad


def _date_axis(axes: Axes, zone: ZoneInfo) -> None:
    """Dates and times on the x axis in the workspace zone, as few labels as read well."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=zone, minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))  # type: ignore[no-untyped-call]


def _draw_clock(axes: Axes, clock: _ClockKey, now: datetime, zone: ZoneInfo, now_word: str) -> None:

    ident, rule, subject, status, start, due, met_at, missed_at = clock
    low, high = _axis_range(clock, now)
    axes.set_xlim(_x(low), _x(high))
    axes.set_ylim(-0.6, 0.6)
    left = _x(start)
    width = max(_x(due) - left, 1e-6)
    bars = axes.barh([0], [width], left=[left], height=0.5, color=STATUS_COLOURS.get(status, "#4c78a8"))
    bars.patches[0].set_gid(f"clock-bar-{ident}")
    if met_at is not None:
        (mark,) = axes.plot([_x(met_at)], [0], marker="v", markersize=9, color="#1a7f1a", linestyle="none")
        mark.set_gid(f"clock-met-{ident}")
    if status == "missed" or (status in ("pending", "warned") and due <= now):
        (mark,) = axes.plot([_x(missed_at or due)], [0], marker="X", markersize=9, color="#b00000", ls="none")
        mark.set_gid(f"clock-missed-{ident}")
    if low <= now <= high:
        line = axes.axvline(_x(now), color="#d62728", linestyle="--", linewidth=1.2)
        line.set_gid(f"now-line-{ident}")
        axes.text(_x(now), 0.45, f" {now_word}", color="#d62728", fontsize=7, va="bottom")
    elif now > high:
        axes.text(1.0, 0.5, f"{now_word} \u2192", transform=axes.transAxes, ha="right", fontsize=7)
    axes.set_yticks([0])
    axes.set_yticklabels([f"{rule}\n{subject}" if subject else rule])
    _date_axis(axes, zone)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.grid(axis="x", color="#e0e0e0", linewidth=0.6)


@lru_cache(maxsize=256)
def _clock_svg(clocks: tuple[_ClockKey, ...], now: datetime, zone: str, now_word: str) -> str:
    figure = _figure(7.6, 0.55 + 0.85 * len(clocks))
    tz = ZoneInfo(zone)
    axes_list = figure.subplots(len(clocks), 1, squeeze=False)[:, 0]
    for axes, clock in zip(axes_list, clocks, strict=True):
        _draw_clock(axes, clock, now, tz, now_word)
    inches = figure.get_figheight()
    figure.subplots_adjust(left=0.24, right=0.97, top=1 - 0.25 / inches, bottom=0.45 / inches, hspace=1.1)
    return _svg(figure)


def clock_chart(clocks: list[Clock], now: datetime, zone: str, *, now_word: str = "now") -> str | None:
    """Every clock as a row of a timeline: its run as a bar, a "now" line, met (▼) and missed (✕) marks.

    None when the incident has no clock.
    """
    if not clocks:
        return None
    minute = now.replace(second=0, microsecond=0)
    key = tuple(
        (c.id, c.rule, c.subject, c.status, c.start_at, c.due_at, c.met_at, c.missed_at) for c in clocks
    )
    with _DRAWING:
        return _clock_svg(key, minute, zone, now_word)


# One channel as the chart needs it: channel, recipients, then (minute, count) pairs.
_ChannelKey = tuple[str, int, tuple[tuple[datetime, int], ...]]


@lru_cache(maxsize=128)
def _progress_svg(channels: tuple[_ChannelKey, ...], zone: str, total_word: str) -> str:

    figure = _figure(7.6, 2.6)
    axes = figure.add_subplot()
    tz = ZoneInfo(zone)
    for name, recipients, timeline in channels:
        colour = _CHANNEL_COLOURS.get(name, "#333333")
        if timeline:
            times: list[float] = []
            running: list[int] = []
            total = 0
            for at, count in timeline:
                total += count
                times.append(_x(at))
                running.append(total)
            (line,) = axes.step(
                times, running, where="post", color=colour, label=f"{name} {total}/{recipients}"
            )
            line.set_gid(f"progress-{name}")
        if recipients:
            axes.axhline(recipients, color=colour, linestyle=":", linewidth=1)
    axes.set_ylim(bottom=0)
    axes.set_ylabel(total_word)
    _date_axis(axes, tz)
    axes.legend(loc="lower right", fontsize=7, frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.grid(color="#e0e0e0", linewidth=0.6)
    figure.subplots_adjust(left=0.1, right=0.98, top=0.95, bottom=0.18)
    return _svg(figure)


def progress_chart(channels: list[ChannelProgress], zone: str, *, total_word: str = "notified") -> str | None:
    """People notified per channel over time (a running count, dotted at the channel's recipients).

    None while no delivery has been made on any channel: there is no progress to draw yet.
    """
    if not any(c.timeline for c in channels):
        return None
    key = tuple((c.channel, c.recipients, tuple(c.timeline)) for c in channels)
    with _DRAWING:
        return _progress_svg(key, zone, total_word)
