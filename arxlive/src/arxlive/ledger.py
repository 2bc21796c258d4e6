"""The API ledger: every OpenAlex call priced by kind, against daily and monthly budgets in dollars.

Amounts are kept as integer micro-dollars, so that sums of $0.0001 calls stay exact. The rules
(prices, periods, what a budget allows, the summary) are pure; the counts live in the store's
`api_ledger` table (one row per UTC day and kind).
"""

from __future__ import annotations

import datetime as dt

MICRO = 1_000_000


def micro(dollars: float) -> int:
    return round(dollars * MICRO)


def dollars(micros: int) -> float:
    return round(micros / MICRO, 6)


def periods(today: dt.date) -> tuple[str, str]:
    """The keys the budgets count under: ('2026-11-20', '2026-11')."""
    return today.isoformat(), today.strftime("%Y-%m")


def allows(cost: int, spent_day: int, spent_month: int, daily: int, monthly: int) -> bool:
    """Whether a call of `cost` fits in both budgets (all in micro-dollars)."""
    return spent_day + cost <= daily and spent_month + cost <= monthly


class Ledger:
    """Charges calls for one run: `charge(kind)` before each attempt, `summary()` at the end."""

    def __init__(self, store, prices: dict, daily_usd: float, monthly_usd: float, today: dt.date):
        self.store, self.today = store, today
        self.prices = {k: micro(v) for k, v in prices.items()}
        self.daily, self.monthly = micro(daily_usd), micro(monthly_usd)
        self.run: dict[str, list[int]] = {}   # kind -> [calls, micro-dollars] of this run

    def charge(self, kind: str) -> bool:
        cost = self.prices[kind]
        day, month = periods(self.today)
        spent_day, spent_month = self.store.ledger_spent(day, month)
        if not allows(cost, spent_day, spent_month, self.daily, self.monthly):
            return False
        self.store.ledger_add(day, kind, cost)
        calls = self.run.setdefault(kind, [0, 0])
        calls[0] += 1
        calls[1] += cost
        return True

    def summary(self) -> dict:
        """This run's calls and dollars by kind, and what is left of today's and this month's budgets."""
        spent_day, spent_month = self.store.ledger_spent(*periods(self.today))
        return {
            "calls": sum(c for c, _ in self.run.values()),
            "usd": dollars(sum(m for _, m in self.run.values())),
            "by_kind": {k: {"calls": c, "usd": dollars(m)} for k, (c, m) in sorted(self.run.items())},
            "left_today_usd": dollars(max(0, self.daily - spent_day)),
            "left_month_usd": dollars(max(0, self.monthly - spent_month)),
        }
