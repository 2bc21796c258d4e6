"""The fake servers' own parsing of fault specs (test code for test code: a wrong spec must not pass)."""

from __future__ import annotations

import pytest

from fakes.servers import Fault


def test_fault_specs():
    f = Fault.parse("503=2@3*4", {"503"})
    assert (f.kind, f.value, f.page, f.times) == ("503", "2", 3, 4)
    assert Fault.parse("drop*inf", {"drop"}).times == float("inf")
    with pytest.raises(ValueError):
        Fault.parse("boom", {"503"})
