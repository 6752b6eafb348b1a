"""The privacy audit beyond chapter 15's own checks: the white-box audit at σ = 0 and ε = 10, over a Poisson ledger and with
secret seeds, the black-box audit's plumbing through `finetune`, and `dp_synth audit --json`. The one-run bound's
properties, the Bonferroni-corrected guess grid and the real step against deliberately broken ones (ε = 1, 4, 10) are
nbs/15_audit.ipynb's inline checks, which tests/test_notebooks.py runs."""

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dp_synth.accounting import PrivacyLedger, PrivacyStatement, calibrate_sigma
from dp_synth.audit import blackbox_audit, whitebox_audit
from dp_synth.cli import build_parser
from dp_synth.data import DataError, ImageDataset

from conftest import REPO

KEYS = {'epsilon_claimed', 'epsilon_lower', 'confidence', 'canaries', 'mode'}


@pytest.fixture(autouse=True)
def one_thread():
    "Audits are small; one thread keeps them from fighting over a shared CPU."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_whitebox_sigma0_reaches_ceiling_and_real_step_at_eps10():
    zero = whitebox_audit(0.0, 1.0, 1, seed=5)
    assert math.isinf(zero.epsilon_claimed) and zero.epsilon_lower > 5.0 and zero.auc == 1.0
    ten = whitebox_audit(calibrate_sigma(10.0, 1e-5, 1.0, 1), 1.0, 1, seed=6)
    assert ten.consistent and ten.epsilon_lower < zero.epsilon_lower


def test_whitebox_poisson_ledger_and_secret_seed():
    ledger = [[1.0, 0.2, 5], [2.0, 0.5, 3]]
    r = whitebox_audit(None, None, None, canaries=200, ledger=ledger, others=20)
    L = PrivacyLedger()
    for s, q, n in ledger:
        L.record(s, q, n)
    assert abs(r.epsilon_claimed - L.epsilon(1e-5)) < 1e-9 and r.consistent and r.steps == 8
    a, b = whitebox_audit(1.0, 1.0, 1, canaries=200), whitebox_audit(1.0, 1.0, 1, canaries=200)
    assert (a.is_member != b.is_member).any()  # no seed: fresh secret coin flips
    d = a.to_dict()
    assert KEYS <= set(d) and 'scores' not in d and json.loads(json.dumps(d)) == d


def _blobs(n, size=8):
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    c = torch.rand(n, 2, generator=g) * (size - 4) + 2
    img = torch.exp(-((yy - c[:, :1, None]) ** 2 + (xx - c[:, 1:, None]) ** 2) / 4)
    return ImageDataset(
        (255 * img).to(torch.uint8)[:, None],
        (c[:, 0] > size / 2).long(),
        ['top', 'bottom'],
        name='blobs',
        split='train',
        source='generated',
    )


def test_blackbox_plumbing(tmp_path):
    "A few steps through the real `finetune`, DP on and off: the result is well formed (detection is chapter 15's test)."
    from dp_synth.finetune import FinetuneConfig

    cfg = FinetuneConfig(
        model='scratch:tiny',
        dataset='blobs',
        epsilon=2.0,
        steps=3,
        batch_size=8,
        K=1,
        micro_batch_size=64,
        log_every=100,
        ckpt_every=100,
        device='cpu',
    )
    on = blackbox_audit(cfg, tmp_path / 'on', canaries=12, private=_blobs(8), seed=0)
    off = blackbox_audit(cfg, tmp_path / 'off', canaries=12, private=_blobs(8), dp=False, seed=0)
    assert on.mode == off.mode == 'black-box' and on.epsilon_claimed <= 2.0 and math.isinf(off.epsilon_claimed)
    assert on.members == off.members == int(on.is_member.sum()) and len(on.scores) == 12 and on.consistent
    assert json.loads((tmp_path / 'off' / 'privacy.json').read_text())['private'] is False


def _run_audit(*argv):
    "`dp_synth audit ARGV` through the real parser, errors raised (not turned into an exit code), stdout captured."
    args = build_parser('audit').parse_args(['audit', *argv])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = args.func(args)
    return rc, buf.getvalue()


def _tiny_run(d: Path, eps=2.0) -> Path:
    "A `dp_synth run` directory whose RUN/finetune/privacy.json states one full-batch step calibrated to `eps`."
    sigma = calibrate_sigma(eps, 1e-5, 1.0, 1)
    (d / 'finetune').mkdir(parents=True)
    dpsgd = dict(
        name='DP-SGD (Poisson-subsampled Gaussian, per-example clipping)',
        noise_multiplier=sigma,
        sample_rate=1.0,
        steps=1,
        max_grad_norm=1.0,
    )
    PrivacyStatement('digits', 1438, 1e-5, eps, eps, sigma, 1.0, 1, 1.0, 1438, [[sigma, 1.0, 1]], [dpsgd]).write(
        d / 'finetune'
    )
    return d


def test_cli_json_keys(tmp_path):
    run = _tiny_run(tmp_path / 'run')  # a `dp_synth run` layout: RUN/finetune/privacy.json
    rc, out = _run_audit('--from', str(run), '--json', '--seed', '1')
    res = json.loads(out)
    assert rc == 0 and KEYS <= set(res) and res['mode'] == 'white-box' and res['canaries'] == 1000 and res['consistent']
    assert abs(res['epsilon_claimed'] - 2.0) < 1e-3
    rc, out = _run_audit(
        '--from', str(run), '--json', '--broken', 'no_clip', '--canaries', '400', '--confidence', '0.9'
    )
    res = json.loads(out)
    assert not res['consistent'] and res['canaries'] == 400 and res['confidence'] == 0.9
    with pytest.raises(DataError, match='no privacy.json'):
        _run_audit('--from', str(tmp_path / 'nothing'))
    with pytest.raises(DataError, match='white-box audit only'):
        _run_audit('--from', str(run), '--mode', 'black-box', '--broken', 'no_clip')


def test_cli_registered_in_dp_synth(tmp_path):
    "Once cli.py registers the command, `dp_synth audit --json` prints one JSON object with the keys."
    from dp_synth import cli

    if 'audit' not in cli.build_parser()._subparsers._group_actions[0].choices:
        pytest.skip('audit is not registered in cli.py yet')
    run = _tiny_run(tmp_path / 'run')
    r = subprocess.run(
        [
            sys.executable,
            '-c',
            'import sys; from dp_synth.cli import main; sys.exit(main())',
            'audit',
            '--from',
            str(run),
            '--json',
            '--canaries',
            '200',
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert KEYS <= set(json.loads(r.stdout))


def test_cli_blackbox_rerun_of_a_run(tmp_path):
    "--mode black-box re-runs the run's own fine-tuning config (from its checkpoint) with canaries."
    from dp_synth.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        model='scratch:tiny',
        dataset='digits',
        epsilon=4.0,
        steps=2,
        batch_size=64,
        K=1,
        micro_batch_size=64,
        log_every=100,
        ckpt_every=100,
        device='cpu',
    )
    finetune(cfg, tmp_path / 'run', progress=False)
    rc, out = _run_audit(
        '--from',
        str(tmp_path / 'run'),
        '--mode',
        'black-box',
        '--canaries',
        '10',
        '--out',
        str(tmp_path / 'audit'),
        '--json',
        '--seed',
        '0',
    )
    res = json.loads(out)
    assert (
        rc == 0
        and KEYS <= set(res)
        and res['mode'] == 'black-box'
        and res['canaries'] == 10
        and res['epsilon_claimed'] <= 4.0
    )


def test_benchmark_dry_run(tmp_path):
    "benchmarks/experiments/audit.py at toy size (white-box and black-box plumbing), writing nothing."
    r = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'experiments' / 'audit.py'), '--dry-run', '--out', str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'},
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert '"row": "whitebox-real-eps1-m50"' in r.stdout and '"row": "blackbox-demo"' in r.stdout
