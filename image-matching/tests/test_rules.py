import math

import pytest

from imagematching import rules


@pytest.mark.parametrize("size, expected", [
    (0, 3.75),               # floor for tiny wikis
    (10_000, 3.75),          # 10000/50000*15 = 3.0, below the floor
    (25_000, 7.5),           # linear part
    (50_000, 15.0),          # pivot: log10(1) + 1 = 1
    (500_000, 30.0),         # (log10(10) + 1) * 15
    (6_000_000, (math.log10(120) + 1) * 15),
])
def test_icon_threshold(size, expected):
    assert rules.icon_threshold(size) == pytest.approx(expected)


@pytest.mark.parametrize("instance, expected", [
    ("Q5", True), (None, True), ("Q4167410", False), ("Q577", False), ("Q13406463", False), ("Q28920052", False),
])
def test_is_article_page(instance, expected):
    assert rules.is_article_page(instance) is expected


@pytest.mark.parametrize("snapshot", ["2026-10", "1999-01", "2026-12"])
def test_valid_snapshots(snapshot):
    assert rules.validate_snapshot(snapshot) == snapshot


@pytest.mark.parametrize("snapshot", ["2026-13", "2026-00", "2026-1", "26-10", "2026-10-01", "", "latest"])
def test_bad_snapshot_is_named(snapshot):
    with pytest.raises(ValueError, match=f"snapshot '{snapshot}' is not a month"):
        rules.validate_snapshot(snapshot)


def test_parse_wikis():
    assert rules.parse_wikis("enwiki, dewiki,enwiki") == ["dewiki", "enwiki"]
    assert rules.parse_wikis("all") is None
    with pytest.raises(ValueError, match="not an article wiki name: commonswiki"):
        rules.parse_wikis("enwiki,commonswiki")
    with pytest.raises(ValueError, match="not an article wiki name: en"):
        rules.parse_wikis("en")
    with pytest.raises(ValueError, match="no wikis given"):
        rules.parse_wikis(" , ")
