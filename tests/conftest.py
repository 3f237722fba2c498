"""Shared test set-up: every test gets its own empty cache folder, so no test reads results
that another test (or an earlier run on this machine) left in ``~/.cache/symmcd``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path_factory.mktemp("cache")))
