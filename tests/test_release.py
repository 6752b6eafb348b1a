"""What a release really reveals (issue: the guarantee covers what the run really reveals). One test per edge:
no single image decides the data's schema; N is a noisy count unless declared public; one statement everywhere;
allow-listed metadata; the selections no ledger counts are named; owner-only files are 0600 from their first byte;
a run whose evaluation cannot succeed refuses before any ε; and every field of a finished release is accounted for."""

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli

TINY = dict(model='scratch:tiny', dataset='digits', epsilon=5.0, delta=1e-4, K=1, device='cpu', log_every=1)
EVAL = dict(n_synthetic=20, sample_steps=2, sample_batch_size=20, fid_n=10, fid_reference_n=40, more_data=(),
            memorisation=('pixel',), memorisation_n=40, classifier_epochs=1, device='cpu')  # fmt: skip


def _cfg(**over):
    from dp_synth.finetune import FinetuneConfig

    return FinetuneConfig(**{**TINY, **over})


def _digits_folder(root: Path, n: int = 400, rgb: bool = False, grey_first: bool = False) -> Path:
    "The first n 8×8 digits as PNG files in class subfolders (no split subfolders: the most common layout)."
    from dp_synth.data import load_dataset

    ds = load_dataset('digits')
    for i in range(n):
        d = root / f'digit_{int(ds.labels[i])}'
        d.mkdir(parents=True, exist_ok=True)
        a = ds.images[i, 0].numpy()
        img = Image.fromarray(np.stack([a, 255 - a, a // 2], -1) if rgb else a)
        if rgb and grey_first and i == 0:
            img = Image.fromarray(a)  # one greyscale file among colour ones, first in name order
        img.save(d / f'{i:05d}.png')
    return root


def _leaves(obj, path=''):
    "(path, value) of every non-tensor leaf of nested dicts and lists."
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f'{path}.{k}')
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f'{path}[{i}]')
    elif not torch.is_tensor(obj) and not isinstance(obj, np.ndarray):
        yield path, obj


def _finished(tmp_path, secret_seed=None, **over):
    """A finished tiny run in tmp_path/finetune with its release in tmp_path/release (as `dp_synth run` lays them);
    `secret_seed` fixes its secret draws (the noisy count among them) where a test needs one particular draw."""
    from dp_synth.evaluate import EvalConfig, synthesise
    from dp_synth.finetune import finetune
    from dp_synth.release import write_release

    res = finetune(_cfg(**{'steps': 3, 'batch_size': 0, **over}), tmp_path / 'finetune', progress=False,
                   command='dp_synth finetune --dataset /home/alice/patients', secret_seed=secret_seed)  # fmt: skip
    synthesise(tmp_path / 'finetune' / 'model.pt', EvalConfig(dataset=TINY['dataset'], **EVAL), tmp_path)
    return res, write_release(tmp_path, tmp_path / 'finetune', tmp_path / 'synthetic.npz')


# 1. The schema is a setting -------------------------------------------------------------------------------------------
def test_one_greyscale_file_does_not_decide_the_folders_channels(tmp_path):
    "The loaded shape of a colour folder is the same with and without its first (greyscale) file."
    from dp_synth.data import load_dataset

    root = _digits_folder(tmp_path / 'mixed', 60, rgb=True, grey_first=True)
    with_grey = load_dataset(root)
    (root / 'digit_0' / '00000.png').unlink()
    without = load_dataset(root)
    assert with_grey.shape == without.shape == (3, 8, 8)
    assert load_dataset(root, mode='L').shape == (1, 8, 8)  # declared greyscale: every image converted to it


# 2. N is private by default --------------------------------------------------------------------------------------------
def test_no_release_file_holds_the_exact_n_and_the_count_is_charged(tmp_path):
    from dp_synth.accounting import PrivacyLedger
    from dp_synth.checkpoints import load_checkpoint
    from dp_synth.data import load_dataset

    N = len(load_dataset('digits'))
    res, rel = _finished(tmp_path, secret_seed=31)  # (a fixed draw: Ñ = N has probability 1/(50·√(2π)) ≈ 0.8%)
    st = res.statement
    assert st.n_private != N and abs(st.n_private - N) < 6 * 50 and st.dataset_size == 'noisy count (sigma = 50)'
    assert st.ledger[0] == [50.0, 1.0, 1] and st.mechanisms[1]['kind'] == 'count'  # the count's entry, first
    assert st.mechanisms[1]['outcome'] == {'noisy_n': st.n_private}
    assert st.epsilon_spent == pytest.approx(PrivacyLedger(st.ledger).epsilon(st.delta)) and st.epsilon_spent <= 5.0
    assert st.batch_size == min(512, st.n_private // 10) and st.sample_rate == st.batch_size / st.n_private
    assert not any('dataset size N' in d for d in st.declared_public)
    for name in ('model.pt', 'privacy.json', 'synthetic.npz'):
        obj = (load_checkpoint(rel / name) if name == 'model.pt' else json.loads((rel / name).read_text())
               if name == 'privacy.json' else json.loads(str(np.load(rel / name)['meta'])))  # fmt: skip
        hits = [p for p, v in _leaves(obj) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == N]
        assert not hits, (name, hits)
    assert str(N) not in (rel / 'README.md').read_text()


def test_n_declared_public_is_named_and_used_exactly(tmp_path):
    from dp_synth.data import load_dataset
    from dp_synth.finetune import finetune

    N = len(load_dataset('digits'))
    st = finetune(_cfg(steps=2, batch_size=0, public_dataset_size=True), tmp_path / 'ft', progress=False).statement
    assert st.n_private == N and st.dataset_size == 'declared public' and len(st.ledger) == 1
    assert any(d.startswith('dataset size N:') for d in st.declared_public)


# 3. One statement, read from one place, everywhere ------------------------------------------------------------------
def test_after_a_later_charge_every_release_states_the_new_total(tmp_path):
    from dp_synth.checkpoints import load_checkpoint
    from dp_synth.finetune import average_snapshots, charge_run

    res, rel = _finished(tmp_path, snapshot_every=1)
    posthoc = average_snapshots(tmp_path, gamma=2)
    st = charge_run(tmp_path, noise_multiplier=20.0, sample_rate=1.0, steps=1, mechanism='noisy selection (test)')
    assert st.epsilon_spent > res.statement.epsilon_spent
    on_disk = json.loads((rel / 'privacy.json').read_text())
    assert load_checkpoint(rel / 'model.pt')['statement'] == on_disk == st.to_dict()
    assert load_checkpoint(tmp_path / 'finetune' / 'model.pt')['statement'] == st.to_dict()
    inner = load_checkpoint(posthoc)['statement']
    assert inner['epsilon_spent'] == st.epsilon_spent and inner['ledger'] == st.ledger


# 4. Allow-listed metadata ----------------------------------------------------------------------------------------------
def test_release_meta_is_allow_listed(tmp_path):
    from dp_synth.checkpoints import load_checkpoint
    from dp_synth.release import RELEASE_DATA, RELEASE_META

    _, rel = _finished(tmp_path, minutes=0.05, steps=1)
    for model in (rel / 'model.pt', tmp_path / 'finetune' / 'model.pt'):
        ck = load_checkpoint(model)
        assert set(ck['meta']) <= set(RELEASE_META), set(ck['meta']) - set(RELEASE_META)
        assert set(ck['data']) <= set(RELEASE_DATA) and 'history' not in ck
        with zipfile.ZipFile(model) as z:
            blob = b''.join(z.read(m) for m in z.namelist())
        assert b'/home/alice' not in blob and b'seconds' not in blob and str(tmp_path).encode() not in blob
    meta = json.loads(str(np.load(rel / 'synthetic.npz')['meta']))
    assert meta['model'] == 'model.pt' and str(tmp_path) not in json.dumps(meta)


# 5. Selections the ledger does not count are named -------------------------------------------------------------------
def test_tuning_on_the_private_dataset_and_the_posthoc_profile_are_not_covered(tmp_path):
    from dp_synth.accounting import PrivacyLedger
    from dp_synth.checkpoints import load_checkpoint
    from dp_synth.finetune import FinetuneConfig, average_snapshots, privacy_statement
    from dp_synth.pipeline import DEMO

    ledger = PrivacyLedger([[1.0, 0.01, 10]])
    demo = privacy_statement(DEMO.finetune, ledger, 1.0, 0.01, 60000, DEMO.finetune.dataset)
    assert any('chosen by looking at results on mnist itself' in c for c in demo.not_covered)
    other = privacy_statement(FinetuneConfig(dataset='digits'), ledger, 1.0, 0.01, 1400, 'digits')
    assert not any('during development' in c for c in other.not_covered)
    _finished(tmp_path, snapshot_every=1)
    inner = load_checkpoint(average_snapshots(tmp_path, gamma=4))['statement']
    assert any(c.startswith('the post-hoc EMA profile (gamma = 4)') for c in inner['not_covered'])


# 6. Owner-only from the first byte --------------------------------------------------------------------------------------
def test_owner_only_figures_are_never_readable_by_others_even_after_a_crash(tmp_path, monkeypatch):
    "Each figure is 0600 as soon as it exists; a crash between writing and the final rename leaves nothing readable."
    import dp_synth.files
    from dp_synth.data import load_dataset
    from dp_synth.evaluate import _figures
    from dp_synth.memorise import memorisation

    ds = load_dataset('digits')
    synth, test = ds.subset(range(40)), ds.subset(range(40, 80))
    rep = memorisation(synth, ds.subset(range(80, 120)), test, 'pixel', 40)
    reps = [(rep, synth.images, ds.images[80:120], test.images)]
    (tmp_path / 'ok').mkdir()
    (tmp_path / 'crashed').mkdir()
    _figures(tmp_path / 'ok', synth, test, [], reps, 'digits')
    assert sorted(os.listdir(tmp_path / 'ok')) == ['closest_pairs.png', 'memorisation.png', 'samples.png']
    for f in (tmp_path / 'ok').iterdir():
        assert f.stat().st_mode & 0o077 == 0, f

    def crash(*a, **k):
        raise OSError('simulated crash between writing and chmod')

    monkeypatch.setattr(dp_synth.files.os, 'chmod', crash)
    with pytest.raises(OSError, match='simulated crash'):
        _figures(tmp_path / 'crashed', synth, test, [], reps, 'digits')
    left = list((tmp_path / 'crashed').iterdir())
    assert all(f.stat().st_mode & 0o077 == 0 for f in left), left


def test_a_private_folders_fid_cache_is_owner_only(tmp_path, monkeypatch):
    from dp_synth.data import load_dataset
    from dp_synth.fid import reference_stats

    monkeypatch.setenv('DP_SYNTH_DATA', str(tmp_path / 'cache'))
    root = _digits_folder(tmp_path / 'mine', 40)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        reference_stats(load_dataset(root, mode='L'), n=4, progress=False)
    private = tmp_path / 'cache' / 'fid' / 'private'
    files = list(private.iterdir())
    assert private.stat().st_mode & 0o077 == 0 and len(files) == 2  # features and statistics
    assert all(f.stat().st_mode & 0o077 == 0 for f in files)
    assert not [f for f in (tmp_path / 'cache' / 'fid').iterdir() if f.name.startswith('folder_')]


# 7. No run spends its budget only to fail ------------------------------------------------------------------------------
def test_a_run_whose_evaluation_cannot_succeed_refuses_before_any_epsilon(tmp_path):
    "A folder with train/ but no test/: refused by the pre-flight check, before any checkpoint or ledger exists."
    root = _digits_folder(tmp_path / 'data' / 'train', 60)
    out = tmp_path / 'run'
    r = run_cli('run', '--out', out, '--dataset', root.parent, '--model', 'scratch:tiny', '--steps', '2',
                '--warm-start-steps', '2', '--device', 'cpu')  # fmt: skip
    assert r.returncode == 1 and 'the evaluation needs a test split' in r.stderr, r.stderr[-2000:]
    assert not (out / 'finetune').exists()


def test_a_split_less_folder_runs_to_a_release_whose_every_field_is_accounted_for(tmp_path):
    """`dp_synth run` on a folder of class subfolders (no train/test split): the held-out part is its test split,
    never trained on, and `release_reveals` accounts for every field of the release against its statement."""
    from dp_synth.data import load_dataset
    from dp_synth.release import release_reveals

    root = _digits_folder(tmp_path / 'mine', 400)
    out = tmp_path / 'run'
    args = ['--out', out, '--dataset', root, '--image-mode', 'L', '--model', 'scratch:tiny', '--steps', '3',
            '--warm-start-steps', '2', '--n-synthetic', '20', '--sample-steps', '2', '--fid-n', '10',
            '--fid-reference-n', '40', '--more-data', '', '--memorisation', 'pixel', '--memorisation-n', '40',
            '--classifier-epochs', '1', '--device', 'cpu', '--json']  # fmt: skip
    r = run_cli('run', *args)
    assert r.returncode == 0, r.stderr[-3000:]
    train, test = load_dataset(root, 'train', mode='L'), load_dataset(root, 'test', mode='L')
    assert len(train) + len(test) == 400 and 0 < len(test) < 100
    assert not {tuple(x.flatten().tolist()) for x in test.images} & {tuple(x.flatten().tolist()) for x in train.images}
    rows = release_reveals(out / 'release')
    files = {f for f, _, _ in rows}
    assert files == {'model.pt', 'privacy.json', 'synthetic.npz', 'epsilon.png', 'README.md'}
    what = {(f, k): w for f, k, w in rows}
    assert what[('model.pt', 'data.n_train')] == 'answer:count' and what[('model.pt', 'ema')] == 'post:dpsgd'
    assert what[('model.pt', 'before.central')] == 'answer:central'
    st = json.loads((out / 'release' / 'privacy.json').read_text())
    assert any(d.startswith('image schema: mode L, 8×8 pixels') for d in st['declared_public'])
    assert 'held-out' in (out / 'report.md').read_text()


def test_release_reveals_refuses_an_unaccounted_field(tmp_path):
    from dp_synth.checkpoints import load_checkpoint, save_checkpoint
    from dp_synth.release import ReleaseError, release_reveals

    _, rel = _finished(tmp_path)
    assert len(release_reveals(rel)) > 30
    ck = load_checkpoint(rel / 'model.pt')
    ck['meta']['seconds'] = 12.5  # run metadata no declaration covers
    ck.pop('format')
    save_checkpoint(rel / 'model.pt', **ck)
    with pytest.raises(ReleaseError, match="field 'meta.seconds' is not accounted for"):
        release_reveals(rel)
    ck['meta'].pop('seconds')
    ck['statement'] = dict(ck['statement'], epsilon_spent=0.1)  # a stale statement
    save_checkpoint(rel / 'model.pt', **ck)
    with pytest.raises(ReleaseError, match='differs from privacy.json'):
        release_reveals(rel)
