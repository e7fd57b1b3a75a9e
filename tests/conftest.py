from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own EDGEAGENT_HOME, so notes, timers and files never leak."""
    monkeypatch.setenv("EDGEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGEAGENT_FILES", raising=False)


@pytest.fixture(scope="session")
def backend():
    """The embedded default model, loaded once for all tests that run it."""
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.models import default_model_path

    return LlamaCppBackend(default_model_path(), n_ctx=2048)
