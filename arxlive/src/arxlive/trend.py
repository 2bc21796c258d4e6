"""The 30-day trend: a self-contained HTML page drawn from the run summaries already kept.

One chart (matplotlib, rendered to PNG and embedded as a data: URL, so the page needs no network
and no other file) of articles harvested, new, enriched and deferred per run date, with the
OpenAlex cost per day on a second axis, and the same figures as a table below it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from pathlib import Path

from matplotlib.figure import Figure

from .files import atomic_write

DAYS = 30
SERIES = (("harvested", "harvested"), ("new", "new"), ("enriched", "enriched"), ("deferred", "deferred"))


def recent_summaries(exports: Path, run_date: dt.date, days: int = DAYS) -> list[dict]:
    """The summaries of run dates in (run_date - days, run_date], oldest first; unreadable ones skipped."""
    first = run_date - dt.timedelta(days=days - 1)
    out = []
    for path in sorted(exports.glob("summary-*.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            day = dt.date.fromisoformat(summary["date"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if first <= day <= run_date:
            out.append(summary)
    return sorted(out, key=lambda s: s["date"])


def chart_png(summaries: list[dict], run_date: dt.date, days: int = DAYS) -> bytes:
    fig = Figure(figsize=(10, 4.5), dpi=100)
    ax = fig.subplots()
    dates = [dt.date.fromisoformat(s["date"]) for s in summaries]
    for key, label in SERIES:
        ax.plot(dates, [s.get(key) or 0 for s in summaries], marker="o", label=label)
    ax.set_xlim(run_date - dt.timedelta(days=days - 1), run_date)
    ax.set_ylabel("articles")
    ax.grid(alpha=0.3)
    cost = ax.twinx()
    cost.bar(dates, [s.get("api_usd") or 0 for s in summaries], alpha=0.25, color="grey", label="OpenAlex $")
    cost.set_ylabel("OpenAlex cost per day ($)")
    handles = ax.get_legend_handles_labels()[0] + cost.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def page(summaries: list[dict], run_date: dt.date, mode: str) -> str:
    png = base64.b64encode(chart_png(summaries, run_date)).decode("ascii")
    title = f"arxlive {mode}: the {DAYS} days to {run_date}"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("date", *(label for _, label in SERIES), "OpenAlex calls", "cost $"))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            s["date"], *(s.get(k) or 0 for k, _ in SERIES), s.get("api_calls") or 0, f"{s.get('api_usd') or 0:.4f}"))
        + "</tr>" for s in summaries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head>
<body><h1>{html.escape(title)}</h1>
<img id="chart" alt="articles and OpenAlex cost per run date" src="data:image/png;base64,{png}">
<table id="figures"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""


def trend_path(exports: Path, run_date: dt.date) -> Path:
    return exports / f"trend-{run_date.isoformat()}.html"


def write_trend(exports: Path, run_date: dt.date, mode: str) -> Path:
    """exports/trend-<date>.html for the 30 days to run_date (written atomically)."""
    path = trend_path(exports, run_date)
    with atomic_write(path) as f:
        f.write(page(recent_summaries(exports, run_date), run_date, mode))
    return path
