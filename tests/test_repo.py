"""The repository is consistent: every module importable on its own with no undefined names, and the README's set-up.

That nbdev-clean, nbdev-export and tools/make_readme.py leave nbs/, dp_synth/ and README.md unchanged is checked once,
by .ci/run's `check` steps (on the real tree, untracked files included), not here as well."""

import pkgutil
import shutil
import subprocess
import sys

import pytest

import dp_synth

from conftest import REPO

MODULES = sorted(m.name for m in pkgutil.iter_modules(dp_synth.__path__, 'dp_synth.'))


@pytest.mark.parametrize('mod', MODULES)
def test_module_imports_alone(mod):
    "Each module imports in a fresh interpreter (no reliance on notebook-only globals)."
    r = subprocess.run([sys.executable, '-c', f'import {mod}'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_no_undefined_names():
    "pyflakes' undefined-name checks (via ruff) over the generated package and the tests."
    ruff = shutil.which('ruff')
    if ruff is None:
        pytest.skip('ruff is not installed (pip install -e ".[test]")')
    r = subprocess.run(
        [ruff, 'check', '--no-cache', '--select', 'F821,F822,F823,F811', 'dp_synth', 'tests', 'tools'],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_has_two_setup_commands():
    "The README gives exactly two set-up commands: install + main job, and test extras + whole suite."
    text = (REPO / 'README.md').read_text()
    setup = text.split('## Set up', 1)[1].split('\n## ', 1)[0]
    blocks = [b.split('\n', 1)[1].strip() for b in setup.split('```')[1::2]]
    assert len(blocks) == 2, blocks
    assert 'pip install' in blocks[0] and blocks[0].endswith('dp_synth demo')
    assert '".[test]"' in blocks[1] and 'pytest' in blocks[1]
