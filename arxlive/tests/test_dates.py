"""dates: the run's window from its date (pure)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from arxlive import dates

TODAY = dt.date(2026, 11, 27)   # a Friday


@pytest.mark.parametrize("run_date,window", [
    ("2026-11-23", ("2026-11-21", "2026-11-23")),   # Monday: Sunday's run was the previous one, minus a day
    ("2026-11-26", ("2026-11-24", "2026-11-26")),   # Thursday
    ("2026-11-22", ("2026-11-18", "2026-11-22")),   # Sunday: back to Thursday (no runs Fri/Sat), minus a day
])
def test_windows_reach_back_to_the_previous_run_and_one_day_more(run_date, window):
    d = dt.date.fromisoformat(run_date)
    got = dates.harvest_window(d, TODAY)
    assert (got[0].isoformat(), got[1].isoformat()) == window


def test_consecutive_scheduled_windows_overlap_and_leave_no_gap():
    day, covered = dt.date(2026, 1, 4), []   # a Sunday; a year of scheduled runs
    while day < dt.date(2027, 1, 1):
        if day.weekday() in dates.RUN_WEEKDAYS:
            covered.append(dates.default_window(day))
        day += dt.timedelta(days=1)
    for (_, u1), (f2, u2) in itertools.pairwise(covered):
        assert f2 < u1 <= u2      # each window starts before the previous one ended: an overlap, no gap


def test_explicit_window_is_taken_as_given():
    d = dt.date(2026, 11, 20)
    assert dates.harvest_window(d, TODAY, dt.date(2026, 11, 1), dt.date(2026, 11, 7)) == (
        dt.date(2026, 11, 1), dt.date(2026, 11, 7))


@pytest.mark.parametrize("args,message", [
    ((dt.date(2026, 11, 28),), "--date 2026-11-28 is in the future"),
    ((dt.date(2026, 11, 20), None, dt.date(2026, 12, 1)), "--until 2026-12-01 is in the future"),
    ((dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 20)), "--from 2026-11-21 is after --until"),
])
def test_future_dates_and_empty_windows_are_refused(args, message):
    with pytest.raises(dates.DateError, match=message):
        dates.harvest_window(args[0], TODAY, *args[1:])


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "20261120", "2026-11-20T03:00", "", "tomorrow",
                                   "2026-11-20; rm -rf /"])
def test_only_real_dates_parse(value):
    with pytest.raises(dates.DateError, match="is not a date"):
        dates.parse_date(value, "--date")
