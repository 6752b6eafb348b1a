#!/usr/bin/env python
"""Where a synthetic set loses accuracy: per-class accuracy on the real test split, against real training images.

The study's CNN (chapter 10's protocol: 5 epochs, at least 300 steps) is trained once on the synthetic set and once on
as many class-balanced real training images; both are tested on the real test split. The table gives each class's
accuracy for both and the most frequent confusions of the synthetic-trained CNN. It reads the synthetic images (the
output of a DP run: post-processing) and the dataset's public test split; the real-data line uses the training split,
as the ceiling rows of RESULTS.md do (a benchmark figure for the data owner, not a release).

    python benchmarks/experiments/per_class.py fashion_mnist /work/runs/study/long/long-fmnist-eps10-lr2e-3-snap/seed2 \
        --out benchmarks/results/per_class_fmnist.json
"""

import argparse
import json
from pathlib import Path

from dp_synth.classify import (ClassifierConfig, balanced_subset, class_report, confusion_matrix, predict,
                               train_classifier)  # fmt: skip
from dp_synth.data import load_dataset
from dp_synth.evaluate import load_images
from dp_synth.files import atomic_path


def per_class(train, test, seed: int = 0) -> dict:
    "`class_report` (per-class accuracy, the top 5 confusions) of the CNN trained on `train`, on `test`."
    learn = train_classifier(train, ClassifierConfig(seed=seed), progress=False)
    return class_report(confusion_matrix(predict(learn, test), test.labels, len(test.classes)), test.classes, top=5)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dataset')
    ap.add_argument('folder', type=Path, help='the folder holding synthetic.npz')
    ap.add_argument('--out', type=Path, required=True)
    a = ap.parse_args(argv)
    synth, test = load_images(a.folder / 'synthetic.npz'), load_dataset(a.dataset, 'test')
    real = balanced_subset(load_dataset(a.dataset, 'train'), len(synth))
    rep_s, rep_r = per_class(synth, test), per_class(real, test)
    acc_s, acc_r = list(rep_s['per_class'].values()), list(rep_r['per_class'].values())
    rows = dict(dataset=a.dataset, folder=str(a.folder), n=len(synth), classes=list(test.classes),
                synthetic=acc_s, real=acc_r, confusions=rep_s['confusions'])  # fmt: skip
    print(f"{'class':12s} synthetic  real")
    for c, s, r in zip(test.classes, acc_s, acc_r):
        print(f"{c:12s} {100 * s:8.1f}% {100 * r:5.1f}%")
    print(f"{'mean':12s} {100 * sum(acc_s) / len(acc_s):8.1f}% {100 * sum(acc_r) / len(acc_r):5.1f}%")
    print('most frequent confusions (true → predicted, share of the true class):',
          '; '.join(f"{d['true']} → {d['predicted']} {100 * d['share']:.1f}%" for d in rows['confusions']))  # fmt: skip
    with atomic_path(a.out) as tmp:
        tmp.write_text(json.dumps(rows, indent=1) + '\n')


if __name__ == '__main__':
    main()
