"""ledger: calls priced by kind in dollars against daily and monthly budgets, on a real store."""

from __future__ import annotations

import datetime as dt

from arxlive import ledger
from arxlive.store import Store

D = dt.date(2026, 11, 20)
PRICES = {"filter": 0.0001, "search": 0.001, "single": 0.0}


def test_arithmetic_is_exact_in_micro_dollars():
    assert ledger.micro(0.0001) == 100 and ledger.dollars(10 * 100) == 0.001
    assert sum([ledger.micro(0.0001)] * 10000) == ledger.micro(1.0)
    assert ledger.allows(1000, 999_000, 0, 1_000_000, 30_000_000)
    assert not ledger.allows(1000, 999_001, 0, 1_000_000, 30_000_000)
    assert not ledger.allows(100, 0, 30_000_000, 1_000_000, 30_000_000)
    assert ledger.periods(D) == ("2026-11-20", "2026-11")


def test_budget_by_day_and_month_and_summary_by_kind(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.sqlite").create()
    try:
        book = ledger.Ledger(store, PRICES, daily_usd=0.0025, monthly_usd=0.004, today=D)
        assert [book.charge("search"), book.charge("search"), book.charge("filter")] == [True, True, True]
        assert book.charge("search") is False                 # 0.0021 + 0.001 > 0.0025 a day
        assert book.charge("filter") and book.charge("single")  # a filter still fits; singles are free
        s = book.summary()
        assert s["by_kind"] == {"filter": {"calls": 2, "usd": 0.0002}, "search": {"calls": 2, "usd": 0.002},
                                "single": {"calls": 1, "usd": 0.0}}
        assert (s["calls"], s["usd"], s["left_today_usd"], s["left_month_usd"]) == (5, 0.0022, 0.0003, 0.0018)
        # the next day has a fresh daily budget, but the month's is nearly spent
        nxt = ledger.Ledger(store, PRICES, 0.0025, 0.004, D + dt.timedelta(days=1))
        assert nxt.charge("search") and not nxt.charge("search")
        assert nxt.summary()["left_month_usd"] == 0.0008
        # a new month starts from zero
        dec = ledger.Ledger(store, PRICES, 0.0025, 0.004, dt.date(2026, 12, 1))
        assert dec.charge("search") and dec.summary()["left_month_usd"] == 0.003
    finally:
        store.close()
