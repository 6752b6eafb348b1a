"""Compute the FID reference statistics shipped in `dp_synth/fid_stats/` (and their anchors).

    python tools/make_fid_stats.py mnist            # about 35 minutes on 2 CPU cores

For dataset D: Inception features of 10,000 training images (seed 0) give the reference; 10,000 test images give the
floors (FID of real held-out images at N = 250 ... 10,000 against the reference); the two halves of the reference
give the half-versus-half anchor. The statistics are stored compactly (upper triangle of Σ in float32) and the FID
error that costs is measured and recorded.
"""

import json
import sys
import time
from importlib.resources import files
from pathlib import Path
from dp_synth.data import file_hash
from dp_synth.fid import FEATURES_ID, FIDStats, fid_from_stats, reference_features, reference_key


def main(dataset, n=10_000, seed=0):
    t0 = time.time()
    ftr, _ = reference_features(dataset, 'train', n, seed)
    fte, _ = reference_features(dataset, 'test', n, seed)
    key = reference_key(dataset, 'train', n, seed)
    ref = FIDStats.from_features(ftr, key, dataset=dataset, split='train', seed=seed)
    floors = {
        str(m): round(fid_from_stats(FIDStats.from_features(fte[:m]), ref), 4)
        for m in (250, 500, 1000, 2000, 5000, 10000)
        if m <= len(fte)
    }
    half = round(fid_from_stats(FIDStats.from_features(ftr[: n // 2]), FIDStats.from_features(ftr[n // 2 :])), 4)
    ref.meta.update(floors={'test': floors}, half_vs_half=half, command=f'python tools/make_fid_stats.py {dataset}')
    out = Path(str(files('dp_synth').joinpath('fid_stats')))
    path = ref.save(out / f'{key}.npz', compact=True)
    back = FIDStats.load(path)
    err = max(
        abs(fid_from_stats(FIDStats.from_features(fte[: int(m)]), back) - floors[m]) / floors[m]
        for m in ('1000', '10000')
    )
    man_p = out / 'manifest.json'
    man = json.loads(man_p.read_text()) if man_p.exists() else {}
    man[key] = dict(
        file=path.name,
        sha256=file_hash(path),
        n=n,
        features=FEATURES_ID,
        floors=floors,
        half_vs_half=half,
        compact_relative_fid_error=float(f'{err:.2e}'),
        command=ref.meta['command'],
    )
    man_p.write_text(json.dumps(man, indent=1) + '\n')
    print(json.dumps(man[key], indent=1), f'\n{time.time() - t0:.0f} s')


if __name__ == '__main__':
    main(*sys.argv[1:2])
