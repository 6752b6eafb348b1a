"""Every notebook in nbs/ is a test: run it top to bottom as `nbdev-test` does.

Cells flagged `#| slow` or `#| cuda` are skipped unless named in $DP_SYNTH_TEST_FLAGS (e.g. "slow").
Each notebook runs in its own process, so one cannot leak state (or memory) into the next.
"""

import os
import subprocess
import sys

import pytest

from conftest import REPO

NOTEBOOKS = sorted(
    p for p in (REPO / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_')
)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.relative_to(REPO / 'nbs').as_posix() for p in NOTEBOOKS])
def test_notebook(nb):
    flags = os.environ.get('DP_SYNTH_TEST_FLAGS', '')
    code = (
        'import sys; from nbdev.test import test_nb; from nbdev.config import get_config; '
        'skip = get_config().tst_flags; skip = skip.split() if isinstance(skip, str) else list(skip); '
        f'ok, t = test_nb(sys.argv[1], skip_flags=skip, force_flags={flags.split()!r}, basepath={str(REPO)!r}); '
        'sys.exit(0 if ok else 1)'
    )
    r = subprocess.run([sys.executable, '-c', code, str(nb)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stderr[-6000:]}\n{r.stdout[-2000:]}'
