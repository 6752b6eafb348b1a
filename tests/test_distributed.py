"Multi-process DP-SGD: two gloo processes under torchrun take the same step as one process (noise added once)."

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import EXE, run_cli

HERE = Path(__file__).parent
pytestmark = pytest.mark.distributed  # every test here starts torchrun or several processes


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(out, nproc):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = (
        [sys.executable, str(HERE / 'dist_worker.py'), str(out)]
        if nproc == 1
        else [
            sys.executable,
            '-m',
            'torch.distributed.run',
            f'--nproc_per_node={nproc}',
            '--master_addr=127.0.0.1',
            f'--master_port={_free_port()}',
            str(HERE / 'dist_worker.py'),
            str(out),
        ]
    )
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return torch.load(out, weights_only=False)


def _cli_two_and_one(flags, out_two, out_one):
    """Run `dp_synth *flags` under torchrun with 2 gloo processes (--out out_two), then in one process (--out out_one).
    Both must succeed and the 2-process run must print exactly one JSON summary (rank 0's). Returns (two, one) summaries."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    two = subprocess.run(
        [
            sys.executable,
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            '--master_addr=127.0.0.1',
            f'--master_port={_free_port()}',
            str(EXE),
            *flags,
            '--out',
            str(out_two),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    lines = [l for l in two.stdout.splitlines() if l.startswith('{')]
    assert len(lines) == 1, two.stdout[-2000:]  # one summary: rank 0's
    one = run_cli(*flags, '--out', out_one, env=env, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    return json.loads(lines[0]), json.loads(one.stdout.strip().splitlines()[-1])


def test_two_gloo_processes_equal_one(tmp_path):
    one, two = _launch(tmp_path / 'one.pt', 1), _launch(tmp_path / 'two.pt', 2)
    assert one['world'] == 1 and two['world'] == 2
    for a, b in zip(one['stats'], two['stats']):  # global statistics: the whole logical batch, not a share
        assert a['batch_size'] == b['batch_size'] > 0
        for k in ('mean_loss', 'mean_grad_norm', 'clipped_fraction'):
            assert abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(a[k])), (k, a[k], b[k])
    worst = max((one['params'][k] - two['params'][k]).abs().max().item() for k in one['params'])
    # one noise draw of std sigma*C/(qN) = 1.1*0.3/10 per coordinate moves weights by lr times that (0.0165 per step):
    # a second draw, or a missing one, would differ by that much; float summation order differs by ~1e-7
    assert worst < 1e-5, worst


def test_finetune_under_torchrun(tmp_path):
    "`torchrun ... dp_synth finetune`: two processes spend exactly the budget one process spends, and rank 0 alone writes."
    flags = [
        'finetune',
        '--model',
        'fmnist-small',
        '--dataset',
        'mnist',
        '--epsilon',
        '10',
        '--steps',
        '3',
        '--batch-size',
        '16',
        '--max-grad-norm',
        '0.3',
        '--micro-batch-size',
        '8',
        '--device',
        'cpu',
        '--public-dataset-size',  # (each run would draw its own noisy count Ñ, and q = B/Ñ with it: N fixes q here)
        '--json',
    ]
    res, ref = _cli_two_and_one(flags, tmp_path / 'two', tmp_path / 'one')
    assert res['finished'] and res['steps'] == ref['steps'] == 3
    for k in ('epsilon_spent', 'sigma', 'sample_rate'):
        assert res[k] == ref[k], (k, res[k], ref[k])
    priv = json.loads((tmp_path / 'two' / 'privacy.json').read_text())
    assert priv['steps'] == priv['mechanisms'][0]['steps'] == 3 and priv['epsilon_spent'] == ref['epsilon_spent']
    assert (tmp_path / 'two' / 'model.pt').is_file()


def test_sample_under_torchrun(tmp_path):
    "`torchrun ... dp_synth sample`: the processes share the batches, and rank 0 writes what one process would write."
    import numpy as np

    flags = [
        'sample',
        '--from',
        'fmnist-small',
        '--n-images',
        '30',
        '--steps',
        '3',
        '--batch-size',
        '8',
        '--device',
        'cpu',
        '--json',
    ]
    _cli_two_and_one(flags, tmp_path / 'two.npz', tmp_path / 'one.npz')
    a, b = np.load(tmp_path / 'one.npz'), np.load(tmp_path / 'two.npz')
    assert np.array_equal(a['labels'], b['labels']) and a['images'].shape == (30, 1, 28, 28)
    assert np.abs(a['images'].astype(int) - b['images'].astype(int)).max() <= 1  # same seeds: identical up to rounding


def test_evaluate_under_torchrun(tmp_path):
    "`torchrun ... dp_synth evaluate`: sampling and Inception features split across processes give one process's FID."
    flags = [
        'evaluate',
        '--from',
        'fmnist-small',
        '--dataset',
        'fashion_mnist',
        '--fid-reference-n',
        '60',
        '--n-synthetic',
        '60',
        '--fid-n',
        '60',
        '--sample-steps',
        '2',
        '--sample-batch-size',
        '40',
        '--classifier-epochs',
        '1',
        '--more-data',
        '',
        '--memorisation',
        '',
        '--device',
        'cpu',
        '--json',
    ]
    b, a = _cli_two_and_one(flags, tmp_path / 'two', tmp_path / 'one')
    assert (
        a['fid_n'] == b['fid_n'] == 60 and a['n_synthetic'] == b['n_synthetic'] == 60
    )  # sampled in batches of 40 and 20, one Inception chunk each: both ranks extract
    assert abs(a['fid'] - b['fid']) <= 1e-3 * a['fid'], (a['fid'], b['fid'])  # same images, same features, same FID


def test_resume_under_torchrun_takes_rank_0_state(tmp_path):
    "Resume with 2 gloo processes where only rank 0's directory holds the checkpoint: step, ledger and weights come from rank 0."
    from dp_synth.checkpoints import load_checkpoint

    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    one = subprocess.run(
        [sys.executable, str(HERE / 'dist_worker.py'), 'resume', str(tmp_path), '2'],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )  # the earlier invocation: 2 steps, written to rank0/
    assert one.returncode == 0 and 'RESULT 2 True' in one.stdout, one.stderr[-3000:]
    two = subprocess.run(
        [
            sys.executable,
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            '--master_addr=127.0.0.1',
            f'--master_port={_free_port()}',
            str(HERE / 'dist_worker.py'),
            'resume',
            str(tmp_path),
            '4',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert two.stdout.count('RESULT 4 True') == 2  # both processes took steps 3 and 4 only, in step
    ck = load_checkpoint(tmp_path / 'rank0' / 'checkpoint.pt')
    assert ck['ledger']['entries'][0] == [50.0, 1.0, 1]  # the noisy count of N, drawn once, by rank 0 (not resumed)
    assert ck['ledger']['entries'][1][2] == 4 and ck['meta']['step'] == 4
