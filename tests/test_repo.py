"""The repository is consistent: every module importable on its own with no undefined names, and the README's set-up.

That nbdev-clean, nbdev-export and tools/make_readme.py leave nbs/, dp_synth/ and README.md unchanged is checked once,
by .ci/run's `check` steps (on the real tree, untracked files included), not here as well."""

import pkgutil
import re
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


def test_code_is_laid_out_by_ruff_format_alone():
    """The notebooks (the source) are as `ruff format` lays them out, and nothing in them or in the package opts out
    with `# fmt: skip` (or `fmt: off`): a comment that explains a line sits on the line above it."""
    ruff = shutil.which('ruff')
    if ruff is None:
        pytest.skip('ruff is not installed (pip install -e ".[test]")')
    r = subprocess.run([ruff, 'format', '--no-cache', '--check', 'nbs'], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    marks = [
        f'{p.relative_to(REPO)}:{i}'
        for p in [*sorted((REPO / 'dp_synth').glob('*.py')), *sorted((REPO / 'nbs').rglob('*.ipynb'))]
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r'#\s*fmt:\s*(skip|off)', line)
    ]
    assert not marks, f"{len(marks)} formatter opt-outs: {marks[:10]}"
    # a comment the formatter pushed off its line lands after a closing bracket: `)  # ...` on a line of its own
    pushed = [
        f'{p.name}:{i}'
        for p in sorted((REPO / 'dp_synth').glob('*.py'))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.match(r'\s*[)\]}]+:?\s+#', line)
    ]
    assert not pushed, f"comments after a closing bracket (put them on the line above): {pushed[:10]}"


def test_the_private_trainer_reads_in_small_pieces():
    """Chapter 08, the chapter a DP reviewer must read: no code cell over 60 lines, no function of its module over 50,
    and the run's state is one object whose parts are methods (no free function takes the run first)."""
    import ast
    import json

    nb = json.loads((REPO / 'nbs' / '08_finetune.ipynb').read_text())
    big = [
        (i, n)
        for i, c in enumerate(nb['cells'])
        if c['cell_type'] == 'code' and (n := len(''.join(c['source']).splitlines())) > 60
    ]
    assert not big, f"cells of chapter 08 over 60 lines (index, lines): {big}"
    tree = ast.parse((REPO / 'dp_synth' / 'finetune.py').read_text())
    fns = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in fns if f.end_lineno - f.lineno + 1 > 50]
    assert not long, f"functions of dp_synth/finetune.py over 50 lines: {long}"
    takes_run = [
        f.name
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and f.args.args
        and f.args.args[0].arg == 'run'
        and not any(ast.unparse(d) == 'patch' or ast.unparse(d).startswith('patch(') for d in f.decorator_list)
    ]
    assert not takes_run, f"free functions that take the run first (make them PrivateRun methods): {takes_run}"
    from dp_synth.finetune import PrivateRun

    for part in ('open', 'count', 'choose', 'plan_dp_sgd', 'dp_step', 'log', 'take_steps', 'released', 'dp_sgd'):
        assert callable(getattr(PrivateRun, part, None)), part


def test_readme_has_two_setup_commands():
    "The README gives exactly two set-up commands: install + main job, and test extras + whole suite."
    text = (REPO / 'README.md').read_text()
    setup = text.split('## Set up', 1)[1].split('\n## ', 1)[0]
    blocks = [b.split('\n', 1)[1].strip() for b in setup.split('```')[1::2]]
    assert len(blocks) == 2, blocks
    assert 'pip install' in blocks[0] and blocks[0].endswith('dp_synth demo')
    assert '".[test]"' in blocks[1] and 'pytest' in blocks[1]
