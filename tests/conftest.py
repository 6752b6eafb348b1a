"Shared pytest fixtures for dp_synth."
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    "The repository root."
    return REPO


@pytest.fixture
def empty_root(tmp_path, monkeypatch) -> Path:
    "A fresh, empty data cache, with every internet route switched off."
    monkeypatch.setenv('DP_SYNTH_OFFLINE', '1')
    monkeypatch.delenv('DP_SYNTH_CIFAR10', raising=False)
    root = tmp_path/'cache'
    root.mkdir()
    return root
