"""The privacy guarantee's preconditions, each as an executable check (issue: the guarantee, proven):
independent full-entropy secret streams; per-example randomness tied to the example (sensitivity C through the real
fine-tuning plumbing); (update, ledger, step) atomic under SIGKILL and SIGINT at random points; non-finite gradients
contained; no secret, raw private pixels or private losses in a release; public/private overlap refused; the tuning
charge persisted; the δ warning. (The accountant's cross-check down to σ = 0.3 is nbs/06_accounting.ipynb's own check,
which tests/test_notebooks.py runs.)"""

import json
import math
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from dp_synth.dpsgd import DPSGD, SecretRandom, clip_and_sum
from dp_synth.objective import diffusion_loss_fn

from conftest import run_cli

HERE = Path(__file__).parent
# The tiny private run the tests share: a from-scratch tiny UNet on scikit-learn's 8×8 digits (N = 1,438).
TINY = dict(model='scratch:tiny', dataset='digits', epsilon=5.0, delta=1e-4, batch_size=32, K=1, device='cpu')


def tiny_cfg(**over):
    from dp_synth.finetune import FinetuneConfig

    return FinetuneConfig(**{**TINY, **over})


# 1. Secret randomness --------------------------------------------------------------------------------------------------
def test_keys_never_coincide_over_a_million_steps():
    r = SecretRandom()
    keys = set()
    for purpose in ('sampling', 'noise', 'diffusion'):
        keys.update(r.key(purpose, s) for s in range(1_000_000))
    assert len(keys) == 3_000_000


def test_secrets_differing_above_bit_32_draw_differently():
    for purpose in ('sampling', 'noise', 'diffusion', 'dropout'):
        a = SecretRandom(5).generator(purpose, 3).random(8)
        b = SecretRandom(5 + 2**40).generator(purpose, 3).random(8)
        c = SecretRandom(5 + 2**100).generator(purpose, 3).random(8)
        assert not np.allclose(a, b) and not np.allclose(a, c)
    assert SecretRandom().secret.bit_length() > 100  # 128 bits from the OS (bit length ≥ 101 but with prob 2^-27)


def test_sampling_draws_independent_of_noise_of_neighbouring_steps():
    "Pearson correlation and a χ² test of the joint histogram: sampling uniforms of step s vs the noise of s-1, s, s+1."
    r = SecretRandom()
    S, n = 600, 50
    u = np.stack([r.generator('sampling', s).random(n) for s in range(S)])
    z = stats.norm.cdf(np.stack([r.generator('noise', s).standard_normal(n) for s in range(S)]))
    for lag in (-1, 0, 1):
        a, b = (u[1:-1], z[1 + lag : S - 1 + lag])
        c = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(c) * math.sqrt(a.size) < 4.5, (lag, c)
        h, _, _ = np.histogram2d(a.ravel(), b.ravel(), bins=8, range=[[0, 1], [0, 1]])
        assert stats.chisquare(h.ravel()).pvalue > 1e-4, lag


# 2. Sensitivity through the real fine-tuning plumbing -----------------------------------------------------------------
def test_adding_one_example_moves_the_clipped_sum_by_at_most_C():
    from dp_synth.finetune import private_batch
    from dp_synth.objective import DiffusionObjective
    from dp_synth.schedule import NoiseSchedule
    from dp_synth.unet import UNet, unet_config

    torch.manual_seed(0)
    net = UNet(unet_config('tiny', image_size=8, n_classes=3))
    for p in net.out.parameters():
        torch.nn.init.normal_(p, std=0.05)
    obj = DiffusionObjective(NoiseSchedule(100), K=2, flip=True, p_uncond=0.2, null_class=net.null_class)
    loss = diffusion_loss_fn(obj)
    data, labels = torch.rand(40, 1, 8, 8) * 2 - 1, torch.randint(0, 3, (40,))
    extra, extra_y = torch.rand(1, 1, 8, 8) * 2 - 1, torch.tensor([1])
    D2, L2 = torch.cat([data, extra]), torch.cat([labels, extra_y])
    C, q, rand, seen = 0.05, 0.5, SecretRandom(2**127 + 99), 0  # (a fixed secret: the test is deterministic)
    for step in range(4):
        sums = []
        for d, l in ((data, labels), (D2, L2)):
            dp = DPSGD(net, torch.optim.SGD(net.parameters(), lr=0.1), 0.0, C, q, 41, micro_batch_size=7)
            g, _ = dp.noisy_gradient(loss, private_batch(rand, step, d, l, q, obj), rand.generator('noise', step))
            sums.append(torch.cat([v.flatten() for v in g.values()]) * dp.expected_batch_size)
        diff = (sums[1] - sums[0]).norm().item()
        assert diff <= C * (1 + 1e-6), (step, diff)
        seen += diff > C / 10  # the extra example was in the batch (its clipped gradient is C)
    assert seen >= 1


# 3. Atomic steps under SIGKILL and SIGINT -------------------------------------------------------------------------------
FAULT_CFG = dict(
    model='scratch:tiny',
    dataset='digits',
    epsilon=10.0,
    delta=1e-4,
    steps=24,
    batch_size=32,
    K=1,
    micro_batch_size=32,
    ckpt_every=4,
    log_every=1,
    lr=1e-3,
    device='cpu',
)
POINTS = ('before_update', 'inside_update', 'after_update', 'checkpoint_write')


def _consistent(ck_path):
    "The checkpoint loads, and its applied updates (Adam's step count, the EMA's) equal the ledger's steps."
    from dp_synth.accounting import PrivacyLedger
    from dp_synth.checkpoints import load_checkpoint

    ck = load_checkpoint(ck_path)
    led = PrivacyLedger.from_state(ck['ledger'])
    dp_steps = led.steps - sum(c['steps'] for c in ck['charges'])  # (the noisy count of N is charged first)
    opt_steps = {int(s['step']) for s in ck['optimizer']['state'].values()} or {0}
    assert opt_steps == {dp_steps} == {ck['meta']['step']}, (opt_steps, dp_steps, ck['meta']['step'])
    assert int(ck['ema']['n_averaged']) == dp_steps
    assert led.epsilon(FAULT_CFG['delta']) <= FAULT_CFG['epsilon'] * (1 + 1e-9)
    assert os.stat(ck_path).st_mode & 0o077 == 0
    return dp_steps


def test_kills_at_random_points_never_break_the_ledger(tmp_path):
    worker = subprocess.Popen(
        [sys.executable, str(HERE / 'fault_worker.py')],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
    )

    def run(out, fault=None, secret=77 * 2**90 + 5):
        worker.stdin.write(json.dumps(dict(cfg=FAULT_CFG, out=str(out), secret=secret, fault=fault)) + '\n')
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    try:
        rng, out, done, kills, runs = random.Random(20261202), tmp_path / 'killed0', 0, [], [tmp_path / 'killed0']
        while len(kills) < 20:
            if done >= FAULT_CFG['steps'] - 1:  # this run is (nearly) through: finish it, start another
                assert run(out) == dict(signal=0, code=0) and _consistent(out / 'checkpoint.pt') == FAULT_CFG['steps']
                out, done = tmp_path / f'killed{len(runs)}', 0
                runs.append(out)
            point, sig = rng.choice(POINTS), rng.choice(('KILL', 'INT'))
            at = rng.randint(done, min(done + 3, FAULT_CFG['steps'] - 1))
            if point == 'checkpoint_write':
                at = min(4 * math.ceil(max(at, done + 1) / 4), 24)  # written every 4 steps
            if point == 'after_update':
                at = max(at, done + 1)  # (counts the step just applied)
            r = run(out, f'{point}:{at}:{sig}')
            assert (r['signal'] == 9) if sig == 'KILL' else (r['code'] == 130), (point, at, sig, r)
            kills.append((point, at, sig))
            ck = out / 'checkpoint.pt'
            if ck.exists():
                done = _consistent(ck)  # never torn; an interrupted (INT) run saved its consistent state
            if sig == 'INT' and point != 'checkpoint_write':
                assert ck.exists()
        assert any(p == 'inside_update' for p, _, _ in kills) and {s for _, _, s in kills} == {'KILL', 'INT'}
        assert run(out) == dict(signal=0, code=0)
        assert _consistent(out / 'checkpoint.pt') == FAULT_CFG['steps']
        assert run(tmp_path / 'straight') == dict(signal=0, code=0)  # the same secret, never interrupted
        from dp_synth.checkpoints import load_checkpoint

        a, b = load_checkpoint(out / 'checkpoint.pt'), load_checkpoint(tmp_path / 'straight' / 'checkpoint.pt')
        assert a['ledger'] == b['ledger'] and a['secret_seed'] is None
        for k in a['ema']:
            assert torch.equal(a['ema'][k], b['ema'][k]), k  # every update applied exactly once
        assert not list(out.glob('.checkpoint.pt.*'))  # no half-written file (with the secret) left behind
    finally:
        worker.stdin.close()
        worker.wait(60)


# 4. Non-finite gradients ------------------------------------------------------------------------------------------------
def test_injected_inf_contributes_zero_and_is_counted():
    net = torch.nn.Linear(5, 3)
    x, w = torch.randn(9, 5), torch.ones(9)
    w[4] = float('inf')
    w[7] = float('nan')

    def loss(f, xb, wb):
        return f(xb).pow(2).sum(1) * wb

    dp = DPSGD(net, torch.optim.SGD(net.parameters(), lr=1.0), 0.0, 0.5, 0.5, 18)
    g, st = dp.noisy_gradient(loss, (x, w))
    keep = [i for i in range(9) if i not in (4, 7)]
    g_ok, _ = dp.noisy_gradient(loss, (x[keep], w[keep]))
    assert st['nonfinite'] == 2 and st['batch_size'] == 9
    for k in g:
        assert torch.isfinite(g[k]).all() and torch.allclose(g[k], g_ok[k], atol=1e-6)
    G = {'a': torch.full((2, 3), float('inf'))}
    sums, norms, factors = clip_and_sum(G, 1.0)
    assert factors.tolist() == [0.0, 0.0] and torch.equal(sums['a'], torch.zeros(3))


# 7. The tuning charge is persisted --------------------------------------------------------------------------------------
def test_tuning_charge_is_written_to_the_run(tmp_path):
    from dp_synth.finetune import charge_run, finetune
    from dp_synth.checkpoints import load_checkpoint

    cfg = tiny_cfg(steps=3)
    res = finetune(cfg, tmp_path / 'ft', progress=False)
    before = json.loads((tmp_path / 'ft' / 'privacy.json').read_text())
    st = charge_run(
        tmp_path / 'ft', noise_multiplier=20.0, sample_rate=1.0, steps=1, mechanism='noisy model selection (test)'
    )
    after = json.loads((tmp_path / 'ft' / 'privacy.json').read_text())
    ck = load_checkpoint(tmp_path / 'ft' / 'checkpoint.pt')
    assert after['epsilon_spent'] > before['epsilon_spent'] == res.epsilon_spent and after == json.loads(
        json.dumps(st.to_dict())
    )
    assert after['steps'] == 5 and ck['ledger']['entries'][-1] == [20.0, 1.0, 1] and len(ck['charges']) == 2
    assert [c['kind'] for c in ck['charges']] == ['count', 'after']  # (3 DP-SGD steps, the noisy count, the charge)
    assert 'noisy model selection (test)' in json.dumps(after['mechanisms'])
    res2 = finetune(cfg, tmp_path / 'ft', progress=False)  # a later resume keeps the charge
    assert res2.epsilon_spent == after['epsilon_spent']
    assert json.loads((tmp_path / 'ft' / 'privacy.json').read_text())['epsilon_spent'] == after['epsilon_spent']


# 9. δ warning --------------------------------------------------------------------------------------------------------
def test_delta_at_least_one_over_n_warns(tmp_path):
    from dp_synth.finetune import PrivacyWarning, finetune

    cfg = tiny_cfg(delta=1e-3, steps=1)
    with pytest.warns(PrivacyWarning, match='not below 1/N'):
        finetune(cfg, tmp_path / 'ft', progress=False)


def test_selection_charged_to_a_run_directory_is_persisted(tmp_path):
    "select_on_validation(real_valid_privacy='charge', ledger=RUN_DIR) writes the charge before the noisy answer exists."
    from dp_synth.classify import ClassifierConfig
    from dp_synth.data import load_dataset
    from dp_synth.finetune import finetune
    from dp_synth.tuning import select_on_validation

    cfg = tiny_cfg(steps=2)
    finetune(cfg, tmp_path / 'ft', progress=False)
    before = json.loads((tmp_path / 'ft' / 'privacy.json').read_text())['epsilon_spent']
    digits = load_dataset('digits')
    sel = select_on_validation(
        digits.subset(range(300)),
        dict(lr=[3e-3], epochs=[1]),
        real_valid=digits.subset(range(1200, 1400)),
        real_valid_privacy='charge',
        ledger=tmp_path / 'ft',
        noise_multiplier=20.0,
        base=ClassifierConfig(arch='cnn', min_steps=5),
        progress=False,
        device='cpu',
    )
    after = json.loads((tmp_path / 'ft' / 'privacy.json').read_text())
    assert after['epsilon_spent'] > before and after['ledger'][-1] == [20.0, 1.0, 1] and sel.real_valid_acc is not None


# 5. The release holds no secret, raw private pixels or private losses ---------------------------------------------------
def test_release_has_no_secret_private_pixels_or_losses(tmp_path):
    import zipfile
    from dp_synth.data import load_dataset
    from dp_synth.evaluate import EvalConfig, synthesise
    from dp_synth.finetune import finetune
    from dp_synth.release import RELEASE_FILES, write_release
    from dp_synth.checkpoints import load_checkpoint

    S = 0xA5C3_9E11_7F00_D00D_BEEF_CAFE_1234_5678
    cfg = tiny_cfg(steps=3, batch_size=64, log_every=1)
    cut = finetune(cfg, tmp_path / 'ft', progress=False, secret_seed=S, stop_after=2)
    assert load_checkpoint(cut.checkpoint)['secret_seed'] == S  # the secret is in the owner's checkpoint meanwhile
    finetune(cfg, tmp_path / 'ft', progress=False)
    losses = [h[1] for h in load_checkpoint(tmp_path / 'ft' / 'checkpoint.pt')['history']]
    synth, _ = synthesise(
        tmp_path / 'ft' / 'model.pt',
        EvalConfig(dataset='digits', n_synthetic=30, sample_steps=2, sample_batch_size=30, device='cpu'),
        tmp_path,
    )
    rel = write_release(tmp_path, tmp_path / 'ft', tmp_path / 'synthetic.npz')
    assert sorted(p.name for p in rel.iterdir()) == sorted(RELEASE_FILES)
    blobs = {p.name: p.read_bytes() for p in rel.iterdir()}
    for name in ('model.pt', 'synthetic.npz'):  # zip members, uncompressed
        with zipfile.ZipFile(rel / name) as z:
            blobs.update({f'{name}:{m}': z.read(m) for m in z.namelist()})
    needles = [
        S.to_bytes(16, 'little'),
        S.to_bytes(16, 'big'),
        str(S).encode(),
        hex(S).encode(),
        format(S, 'x').encode(),
    ]
    needles += [repr(l).encode() for l in losses] + [f'{l:.4f}'.encode() for l in losses]
    for name, blob in blobs.items():
        for n in needles:
            assert n not in blob, (name, n)
    model = load_checkpoint(rel / 'model.pt')
    assert not {'secret_seed', 'optimizer', 'model', 'history'} & set(model) and 'history' not in json.dumps(
        json.loads(blobs['privacy.json'])
    )
    private = load_dataset('digits').images.flatten(1).numpy()
    released = np.load(rel / 'synthetic.npz')['images'].reshape(30, -1)
    priv_rows = {r.tobytes() for r in private}
    assert not any(r.tobytes() in priv_rows for r in released)  # no private image in the synthetic data
    assert set(np.load(rel / 'synthetic.npz').files) == {'images', 'labels', 'classes', 'meta'}


# 6. Public and private overlap is refused -------------------------------------------------------------------------------
def test_pretraining_on_the_private_data_is_refused(tmp_path):
    r = run_cli(
        'run',
        '--out',
        str(tmp_path / 'r'),
        '--dataset',
        'cifar10-animals',
        '--model',
        'pretrain',
        '--pretrain-dataset',
        'cifar10',
        '--steps',
        '2',
    )
    assert r.returncode == 1 and 'same dataset (cifar10)' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'r' / 'public').exists()


def test_finetuning_on_images_the_public_model_saw_is_refused(tmp_path):
    "Content, not names: the private folder holds digits the public model was pre-trained on."
    from PIL import Image
    from dp_synth.data import OverlapError, load_dataset
    from dp_synth.finetune import FinetuneConfig, finetune
    from dp_synth.train import TrainConfig, train

    train(
        TrainConfig(dataset='digits', image_size=8, preset='tiny', steps=1, batch_size=8, sample_every=0),
        tmp_path / 'pub',
        progress=False,
    )
    digits = load_dataset('digits')
    for i in range(40):  # 40 of its images, saved as a 'new' folder
        d = tmp_path / 'mine' / str(int(digits.labels[i]))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.images[i, 0].numpy()).save(d / f'{i}.png')
    cfg = FinetuneConfig(
        model=str(tmp_path / 'pub'),
        dataset=str(tmp_path / 'mine'),
        epsilon=5.0,
        delta=1e-3,
        steps=1,
        batch_size=8,
        K=1,
        device='cpu',
    )
    with pytest.raises(OverlapError, match='also appear in the public data'):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            finetune(cfg, tmp_path / 'ft', progress=False)
    assert not (tmp_path / 'ft' / 'checkpoint.pt').exists()


def test_a_charge_waits_for_no_one_it_refuses_while_a_run_holds_the_ledger(tmp_path):
    "charge_run takes the run's lock: it cannot interleave with a fine-tuning process that holds the ledger in memory."
    from dp_synth.finetune import charge_run, finetune, run_lock
    from dp_synth.checkpoints import CheckpointError

    cfg = tiny_cfg(steps=1)
    finetune(cfg, tmp_path / 'ft', progress=False)
    with run_lock(tmp_path / 'ft'):
        with pytest.raises(CheckpointError, match='another dp_synth process'):
            charge_run(tmp_path / 'ft', 20.0, 1.0, 1, 'test')
    assert charge_run(tmp_path / 'ft', 20.0, 1.0, 1, 'test').steps == 3  # (the noisy count, 1 step, the charge)
