"""The package's design, as executable rules: which module may import which (the DP engine stays small and
self-contained, the layers above it depend downwards only), how a privacy setting travels from the command line to
the noise, and that the command line starts without torch."""

import ast
import json
import subprocess
import sys
import time

import pytest

from conftest import EXE, REPO

PKG = REPO / 'dp_synth'
MODULES = sorted(p.stem for p in PKG.glob('*.py') if p.name != '_modidx.py')  # (_modidx.py: nbdev's symbol index)


def _imports(path) -> dict:
    """{dp_synth module imported: set of scopes that import it} for one file: '<module>' for a top-level import, the
    enclosing function's name for a lazy one. Counts `from dp_synth.x import`, `from .x import`,
    `from dp_synth import x`, `from . import x` and `import dp_synth.x`."""
    found = {}

    def add(mod, scope):
        if mod in MODULES:
            found.setdefault(mod, set()).add(scope)

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
            if isinstance(child, ast.ImportFrom):
                absolute = child.level == 0 and child.module and child.module.split('.')[0] == 'dp_synth'
                if child.level == 1 or absolute:
                    parts = (child.module or '').split('.')[1 if absolute else 0 :]
                    if parts and parts[0]:
                        add(parts[0], scope)
                    else:  # `from dp_synth import x` / `from . import x`
                        for a in child.names:
                            add(a.name, scope)
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith('dp_synth.'):
                        add(a.name.split('.')[1], scope)
            visit(child, inner)

    visit(ast.parse(path.read_text()), '<module>')
    return found


@pytest.fixture(scope='module')
def graph() -> dict:
    "{module: {imported module: scopes}} over every module of dp_synth (imports of itself left out)."
    return {m: {d: s for d, s in _imports(PKG / f'{m}.py').items() if d != m} for m in MODULES}


def _show(graph) -> str:
    "One line per module: what it imports, lazy imports marked with the functions that make them."

    def dep(d, scopes):
        return d if '<module>' in scopes else f'{d} (lazy: {", ".join(sorted(scopes))})'

    return '\n'.join(
        f"  {m:12} → {', '.join(dep(d, s) for d, s in sorted(deps.items())) or '-'}" for m, deps in graph.items()
    )


def test_import_graph(graph):
    "The layering rules of the package, checked on its source (the graph is printed when a rule breaks)."
    deps = {m: set(d) for m, d in graph.items()}

    def importers(mod):
        return {m for m, d in deps.items() if mod in d}

    shown = '\nimport graph of dp_synth:\n' + _show(graph)
    assert deps, 'no modules found' + shown
    # (1) the DP engine (clipping, noise, Poisson sampling, secret randomness) stands on its own: only torchrun's facts
    assert deps['dpsgd'] <= {'dist'}, f"dpsgd imports {sorted(deps['dpsgd'] - {'dist'})}" + shown
    # (2) who runs DP-SGD: the private trainer, and the audit (which audits the DP engine itself, against broken copies)
    assert importers('dpsgd') <= {'finetune', 'audit'}, f"dpsgd is imported by {sorted(importers('dpsgd'))}" + shown
    # (3) sampling needs the schedule and torchrun only; FID needs images (data) and checked files (its Inception
    # weights, shipped statistics), no privacy, training or sampling
    assert deps['sampling'] <= {'dist', 'schedule'}, f"sampling imports {sorted(deps['sampling'])}" + shown
    assert deps['fid'] <= {'dist', 'data', 'files'}, f"fid imports {sorted(deps['fid'])}" + shown
    # (4) the leaves
    # (glyphs, natural: public images from fonts, random processes and wallpapers; numpy, PIL and torch only)
    for leaf in ('schedule', 'files', 'glyphs', 'natural'):
        assert not deps[leaf], f"{leaf} imports {sorted(deps[leaf])}" + shown
    # where a job runs (processes, devices) stands on the file helpers alone (a device not there is a DataError)
    assert deps['dist'] <= {'files'}, f"dist imports {sorted(deps['dist'])}" + shown
    # (5) the diffusion objective knows nothing of DP (the private trainer puts the two together)
    assert 'dpsgd' not in deps['objective'], 'objective imports dpsgd' + shown
    # (6) the command line is the top: nothing imports it
    assert not importers('cli'), f"cli is imported by {sorted(importers('cli'))}" + shown
    # (7) the pipeline is imported by the command line alone; what leaves a run (`release`) is below both the private
    # trainer (a later charge rewrites the release) and the pipeline, and imports neither
    assert importers('pipeline') <= {'cli'}, f"pipeline is imported by {sorted(importers('pipeline'))}" + shown
    assert not {'finetune', 'pipeline', 'evaluate'} & deps['release'], (
        f"release imports {sorted(deps['release'])}" + shown
    )
    # (8) the settings need no torch: dp_synth.config stands on the file helpers alone (the data is loaded lazily)
    assert deps['config'] <= {'files', 'data'}, f"config imports {sorted(deps['config'])}" + shown
    assert 'data' not in {d for d, s in graph['config'].items() if '<module>' in s}, (
        'config imports data eagerly' + shown
    )
    # (9) no cycle anywhere, lazy imports included (a function-local import that closes a loop is still a loop)
    seen, stack = set(), []

    def visit(m):
        if m in stack:
            raise AssertionError('import cycle: ' + ' → '.join(stack[stack.index(m) :] + [m]) + shown)
        if m in seen:
            return
        stack.append(m)
        for d in sorted(deps[m]):
            visit(d)
        stack.pop()
        seen.add(m)

    for m in sorted(deps):
        visit(m)


def test_import_graph_scanner_sees_every_import_form():
    "The scanner itself: top-level and lazy imports, in each spelling the package uses."
    import tempfile
    from pathlib import Path

    src = (
        'from .dist import world_info\nimport dp_synth.schedule\nfrom dp_synth import data\n'
        'def f():\n    from dp_synth.fid import fid\n    from . import unet\nclass C:\n    def g(self):\n'
        '        from .accounting import epsilon_for\n'
    )
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'm.py'
        p.write_text(src)
        found = _imports(p)
    assert found == {
        'dist': {'<module>'},
        'schedule': {'<module>'},
        'data': {'<module>'},
        'fid': {'f'},
        'unet': {'f'},
        'accounting': {'g'},
    }


def test_epsilon_reaches_the_noise_without_being_reparsed():
    """`dp_synth run --epsilon 3`: the value is parsed once (cli, into the fine-tuning stage's config) and reaches the
    noise through at most 4 modules: cli → finetune (FinetuneConfig, plan_budget) → accounting.calibrate_sigma →
    dpsgd.DPSGD(noise_multiplier). The pipeline passes `cfg.finetune` through without reading the privacy settings."""
    from dp_synth.accounting import PrivacyLedger, calibrate_sigma
    from dp_synth.cli import build_parser, config_from_args
    from dp_synth.finetune import plan_budget
    from dp_synth.pipeline import RunConfig

    argv = ['run', '--out', 'x', '--epsilon', '3', '--steps', '20', '--batch-size', '64', '--dataset', 'digits']
    cfg = config_from_args(RunConfig, build_parser('run').parse_args(argv))
    assert cfg.finetune.epsilon == 3 and cfg.finetune.steps == 20 and cfg.finetune.batch_size == 64
    plan = plan_budget(cfg.finetune, 1438)  # the 8×8 digits: N = 1,438
    before = PrivacyLedger(cfg.finetune.before())  # run's recipe: the noisy count of N and the central images
    assert before.entries == [[50.0, 1.0, 1], [20.0, 1.0, 1]]
    assert plan.sigma == calibrate_sigma(3, cfg.finetune.delta, 64 / 1438, 20, spent=before)
    # the last hop: finetune hands plan.sigma to DPSGD as its noise multiplier (its third argument). The one other
    # DPSGD, in `time_dp_step`, times a throwaway copy of the model on random images before any plan exists.
    tree = ast.parse((PKG / 'finetune.py').read_text())
    timing = next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == 'time_dp_step')
    in_timing = {id(n) for n in ast.walk(timing)}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', None) == 'DPSGD']
    real = [c for c in calls if id(c) not in in_timing]
    assert real and all(ast.unparse(c.args[2]).endswith('plan.sigma') for c in real), [ast.unparse(c) for c in real]
    timed = [ast.unparse(c.args[0]) for c in calls if id(c) in in_timing]
    assert timed == ['model'] and 'model = copy.deepcopy(self.model)' in ast.unparse(timing), timed
    # the pipeline never reads a privacy setting itself
    reads = [
        f"line {n.lineno}: {ast.unparse(n)}"
        for n in ast.walk(ast.parse((PKG / 'pipeline.py').read_text()))
        if isinstance(n, ast.Attribute) and n.attr in ('epsilon', 'noise_multiplier')
    ]
    assert not reads, f"pipeline.py reads privacy settings itself: {reads}"


def _imported_modules(stderr: str) -> set:
    "Module names from `python -X importtime` output (stderr)."
    return {
        line.rsplit('|', 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith('import time:') and line.count('|') == 2
    }


def test_import_dp_synth_does_not_import_torch():
    r = subprocess.run(
        [sys.executable, '-X', 'importtime', '-c', 'import dp_synth'], capture_output=True, text=True, cwd=REPO
    )
    assert r.returncode == 0, r.stderr[-3000:]
    mods = _imported_modules(r.stderr)
    assert 'dp_synth' in mods, 'the -X importtime output was not understood'
    assert not {m for m in mods if m.split('.')[0] == 'torch'}, 'import dp_synth imports torch'


SUBCOMMANDS = ['data', 'demo', 'run', 'pretrain', 'sample', 'finetune', 'evaluate', 'budget', 'audit']
HELP = [['--help']] + [[c, '--help'] for c in SUBCOMMANDS]
LIGHT_COMMANDS = HELP + [['budget', '--sigma', '1', '--sample-rate', '0.01', '--steps', '10']]


@pytest.mark.parametrize('argv', LIGHT_COMMANDS, ids=' '.join)
def test_light_commands_do_not_import_torch(argv):
    """`dp_synth --help`, every `dp_synth <command> --help` (the flags come from the torch-free dp_synth.config) and
    `dp_synth budget` start at once: they never import torch."""
    code = f'import sys; from dp_synth.cli import main; sys.exit(main({json.dumps(argv)}))'
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    mods = _imported_modules(r.stderr)
    assert 'dp_synth.cli' in mods, 'the -X importtime output was not understood'
    torch = sorted(m for m in mods if m.split('.')[0] == 'torch')
    assert not torch, f"dp_synth {' '.join(argv)} imports {torch[:5]}"


def test_every_help_answers_within_1_second():
    "Each `--help` through the installed console script, best of 3 runs (a busy moment of the machine left out)."
    for argv in HELP:
        best = float('inf')
        for _ in range(3):
            t0 = time.perf_counter()
            r = subprocess.run([str(EXE), *argv], capture_output=True, text=True)
            best = min(best, time.perf_counter() - t0)
            assert r.returncode == 0, r.stderr[-3000:]
        assert best < 1.0, f"dp_synth {' '.join(argv)} took {best:.2f} s (best of 3)"


@pytest.mark.slow  # wall-clock timing: meaningful on an otherwise idle machine only
@pytest.mark.parametrize('argv', LIGHT_COMMANDS[-1:], ids=['budget'])
def test_light_commands_finish_within_2_seconds(argv):
    "The installed console script, best of 3 runs (to leave out a busy moment of the machine)."
    best = float('inf')
    for _ in range(3):
        t0 = time.perf_counter()
        r = subprocess.run([str(EXE), *argv], capture_output=True, text=True)
        best = min(best, time.perf_counter() - t0)
        assert r.returncode == 0, r.stderr[-3000:]
    assert best < 2.0, f"dp_synth {' '.join(argv)} took {best:.2f} s (best of 3)"
