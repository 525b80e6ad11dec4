"""AUTH_PRUNE_INTERVAL: unset or 0 is off, otherwise whole seconds, validated like the rest."""

from __future__ import annotations

import pytest

from service.config import ConfigError, load_settings


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("0", None), ("300", 300)])
def test_prune_interval(raw: str | None, expected: int | None) -> None:
    env = {} if raw is None else {"AUTH_PRUNE_INTERVAL": raw}
    assert load_settings(env).prune_interval == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "1.5", str(7 * 86_400 + 1)])
def test_invalid_prune_interval_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^AUTH_PRUNE_INTERVAL: invalid value"):
        load_settings({"AUTH_PRUNE_INTERVAL": raw})
