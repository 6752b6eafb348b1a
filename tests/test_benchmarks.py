"The benchmark scripts run (at a tiny size, without writing results): they must not rot between GPU sessions."
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_dp_step_benchmark_runs_small():
    r = subprocess.run([sys.executable, str(REPO/'benchmarks'/'dp_step.py'), '--preset', 'tiny', '--K', '1', '2', '--batch', '4',
                        '--rows', '8', '--repeats', '1', '--no-write'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('dp_synth') == 2 and 'opacus hooks' in r.stdout


def test_fid_features_benchmark_runs_small():
    r = subprocess.run([sys.executable, str(REPO/'benchmarks'/'fid_features.py'), '--n', '12', '--batch', '6', '--no-bf16',
                        '--no-write'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'clean-fid' in r.stdout and 'dp_synth batched' in r.stdout


def test_sampling_benchmark_runs_small():
    r = subprocess.run([sys.executable, str(REPO/'benchmarks'/'sampling.py'), '--n', '4', '--batch', '4', '--ddim', '2',
                        '--ddpm', '2', '--no-write'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'ddim    2 steps' in r.stdout and 'ddpm    2 steps' in r.stdout
