"""The repository is consistent: notebooks clean and in sync with the package, every module importable
on its own with no undefined names, and README.md generated from nbs/index.ipynb."""
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dp_synth

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.iter_modules(dp_synth.__path__, 'dp_synth.'))


def _copy_project(dst: Path) -> Path:
    "Copy what nbdev needs (config, notebooks, package) to `dst`, so checks never touch the working tree."
    shutil.copy(REPO/'pyproject.toml', dst)
    for d in ('nbs', 'dp_synth'):
        shutil.copytree(REPO/d, dst/d, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    return dst


def _tree(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file()}


def test_notebooks_are_clean(tmp_path):
    "nbdev-clean changes nothing: no execution counts, no stray metadata in committed notebooks."
    proj = _copy_project(tmp_path)
    before = _tree(proj/'nbs')
    subprocess.run([sys.executable, '-c', 'from nbdev.clean import nbdev_clean; nbdev_clean()'], cwd=proj, check=True)
    changed = [k for k, v in _tree(proj/'nbs').items() if before.get(k) != v]
    assert not changed, f'run nbdev-clean: these notebooks are not clean: {changed}'


def test_package_in_sync_with_notebooks(tmp_path):
    "nbdev-export reproduces dp_synth/ exactly: nobody edited the generated package by hand, nothing unexported."
    proj = _copy_project(tmp_path)
    before = _tree(proj/'dp_synth')
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=proj, check=True)
    after = _tree(proj/'dp_synth')
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and not k.endswith('.pyc'))
    assert not changed, f'run nbdev-export: dp_synth/ differs from the notebooks in {changed}'


@pytest.mark.parametrize('mod', MODULES)
def test_module_imports_alone(mod):
    "Each module imports in a fresh interpreter (no reliance on notebook-only globals)."
    r = subprocess.run([sys.executable, '-c', f'import {mod}'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_no_undefined_names():
    "pyflakes' undefined-name checks (via ruff) over the generated package and the tests."
    ruff = shutil.which('ruff')
    if ruff is None: pytest.skip('ruff is not installed (pip install -e ".[test]")')
    r = subprocess.run([ruff, 'check', '--no-cache', '--select', 'F821,F822,F823,F811', 'dp_synth', 'tests', 'tools'],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_version_in_init():
    assert dp_synth.__version__.count('.') >= 2


def test_readme_generated_from_index():
    "README.md is what tools/make_readme.py builds from nbs/index.ipynb."
    spec = importlib.util.spec_from_file_location('make_readme', REPO/'tools'/'make_readme.py')
    mr = importlib.util.module_from_spec(spec); spec.loader.exec_module(mr)
    assert (REPO/'README.md').read_text() == mr.render(), 'README.md is stale: run python tools/make_readme.py'


def test_readme_has_two_setup_commands():
    "The README gives exactly two set-up commands: install + main job, and test extras + whole suite."
    text = (REPO/'README.md').read_text()
    setup = text.split('## Set up', 1)[1].split('\n## ', 1)[0]
    blocks = [b.split('\n', 1)[1].strip() for b in setup.split('```')[1::2]]
    assert len(blocks) == 2, blocks
    assert 'pip install' in blocks[0] and blocks[0].endswith('dp_synth demo')
    assert '".[test]"' in blocks[1] and 'pytest' in blocks[1]
