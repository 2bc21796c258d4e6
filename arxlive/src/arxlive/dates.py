"""The run's date and its OAI-PMH window (pure).

A run for date D harvests the records whose OAI datestamp lies in its own window, whatever ran
before, so that a backfill or a re-run of a past date harvests that date again.

arXiv refreshes its metadata Sunday to Thursday around 10:30 pm US Eastern: 02:30 UTC in summer,
03:30 UTC in winter, so a 03:00 UTC run lands before or after the refresh depending on the season.
The window therefore reaches back to the previous scheduled day (Sunday to Thursday) and one day
more: whichever side of the refresh a run lands, the records it could not see yet are inside the
next run's window. Records seen twice are harmless: loading is an idempotent upsert.
"""

from __future__ import annotations

import datetime as dt
import re

# The days the DAG runs on (datetime.weekday(): Monday = 0): Sunday to Thursday, like arXiv's refreshes.
RUN_WEEKDAYS = frozenset({6, 0, 1, 2, 3})
OVERLAP_DAYS = 1


class DateError(ValueError):
    """A date argument that is not a date, lies in the future, or a window that is empty."""


def parse_date(value: str, option: str) -> dt.date:
    """YYYY-MM-DD and nothing else (no times, no week dates)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value or ""):
        raise DateError(f"{option} {value!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DateError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def previous_run_day(day: dt.date) -> dt.date:
    """The scheduled day before `day`: Monday -> Sunday, Sunday -> Thursday."""
    prev = day - dt.timedelta(days=1)
    while prev.weekday() not in RUN_WEEKDAYS:
        prev -= dt.timedelta(days=1)
    return prev


def default_window(run_date: dt.date) -> tuple[dt.date, dt.date]:
    """(from, until) of a scheduled run: the previous scheduled day minus the overlap, to the run's date."""
    return previous_run_day(run_date) - dt.timedelta(days=OVERLAP_DAYS), run_date


def harvest_window(run_date: dt.date, today: dt.date, from_date: dt.date | None = None,
                   until_date: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The window of a run; an explicit --from/--until is taken as given. Raises DateError."""
    if run_date > today:
        raise DateError(f"--date {run_date} is in the future (today is {today}, UTC)")
    frm, until = default_window(run_date)
    frm, until = from_date or frm, until_date or until
    if until > today:
        raise DateError(f"--until {until} is in the future (today is {today}, UTC)")
    if frm > until:
        raise DateError(f"--from {frm} is after --until {until}")
    return frm, until
