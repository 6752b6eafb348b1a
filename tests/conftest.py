"""Shared pytest helpers and fixtures for dp_synth.

Test modules import the helpers directly (`from conftest import REPO, run_cli`): pytest puts tests/ on sys.path
(`pythonpath = ["tests"]` in pyproject.toml, and conftest.py's own folder in the default import mode).
Markers (registered in pyproject.toml): slow and network are left out of a plain `pytest`; run them with `-m slow`."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / 'dp_synth'  # the console script pip installed beside this Python


def run_cli(*args, env=None, check=False, timeout=None) -> subprocess.CompletedProcess:
    """Run `dp_synth *args` (the installed console script), capturing text stdout and stderr.
    `check=True` fails the test, with the end of stderr, unless the command exits 0."""
    r = subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert r.returncode == 0, f'dp_synth {" ".join(map(str, args))} exited {r.returncode}:\n{r.stderr[-3000:]}'
    return r


@pytest.fixture
def repo() -> Path:
    "The repository root."
    return REPO


@pytest.fixture
def empty_root(tmp_path, monkeypatch) -> Path:
    "A fresh, empty data cache, with every internet route switched off."
    monkeypatch.setenv('DP_SYNTH_OFFLINE', '1')
    monkeypatch.delenv('DP_SYNTH_CIFAR10', raising=False)
    root = tmp_path / 'cache'
    root.mkdir()
    return root
