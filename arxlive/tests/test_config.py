"""config: defaults, test-mode limits, a clear error per bad variable, secrets never shown."""

from __future__ import annotations

import pytest

from arxlive.config import DEFAULT_PRICES, ConfigError, describe, load_config


def test_defaults_point_at_the_real_services():
    cfg = load_config({}, production=True)
    assert cfg.oai_url == "https://oaipmh.arxiv.org/oai" and cfg.openalex_url == "https://api.openalex.org"
    assert cfg.oai_delay == 3 and cfg.max_pages is None


def test_test_mode_has_small_limits_and_own_store(tmp_path):
    env = {"ARXLIVE_DATA_DIR": str(tmp_path), "ARXLIVE_BUDGET_DAILY_USD": "50", "ARXLIVE_DB_URL": "sqlite:///x.db"}
    test, prod = load_config(env), load_config(env, production=True)
    assert test.budget_daily_usd <= 0.2 and test.max_pages == 20 and prod.budget_daily_usd == 50
    assert test.store_url != prod.store_url and "test" in test.store_url


@pytest.mark.parametrize("var,value", [
    ("ARXLIVE_OAI_URL", "ftp://x"), ("ARXLIVE_OPENALEX_URL", "not a url"), ("ARXLIVE_OAI_DELAY", "abc"),
    ("ARXLIVE_OAI_DELAY", "-1"), ("ARXLIVE_BUDGET_DAILY_USD", "-1"), ("ARXLIVE_BUDGET_MONTHLY_USD", "many"),
    ("ARXLIVE_BUDGET_DAILY", "1000"), ("ARXLIVE_PRICES", "search=cheap"), ("ARXLIVE_PRICES", "semantic=0.01"),
    ("ARXLIVE_TITLE_SEARCH_CAP", "1.5"), ("ARXLIVE_TITLE_SEARCH_BATCH", "0"), ("ARXLIVE_TITLE_SEARCH_BATCH", "51"),
    ("ARXLIVE_OAI_SET", "cs; drop table"), ("ARXLIVE_MAILTO", "nobody"), ("ARXLIVE_DB_URL", "nonsense"),
    ("ARXLIVE_DB_URL", "oracle://u@h/db"), ("ARXLIVE_OPENALEX_API_KEY", "has space"),
])
def test_bad_value_names_the_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        load_config({var: value})


def test_describe_masks_secrets():
    cfg = load_config({"ARXLIVE_OPENALEX_API_KEY": "k3y", "ARXLIVE_DB_URL": "postgresql://u:pw@h/db"},
                      production=True)
    text = str(describe(cfg)) + repr(cfg)
    assert "k3y" not in text and "pw" not in text


def test_prices_default_to_openalex_and_can_be_changed():
    assert load_config({}).prices == DEFAULT_PRICES == {"filter": 0.0001, "search": 0.001, "single": 0.0}
    assert load_config({"ARXLIVE_PRICES": "search=0.0001"}).prices["search"] == 0.0001


def test_credentials_in_service_urls_are_secrets():
    cfg = load_config({"ARXLIVE_OAI_URL": "https://harvester:pa55w0rd@oai.example.org/oai"})
    assert "pa55w0rd" in cfg.secrets()
    assert "pa55w0rd" not in str(describe(cfg)) and "harvester" not in str(describe(cfg))
