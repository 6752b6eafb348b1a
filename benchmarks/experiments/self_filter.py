#!/usr/bin/env python
"""Does cleaning the synthetic labels help the downstream classifier? A post-processing check, no new ε.

A DP diffusion model conditioned on class c sometimes draws an image that looks like another class (a shirt for a
T-shirt, a 4 for a 9). The CNN trained on such a set learns from those wrong labels. This benchmark tests one rule,
fixed before anything was measured (2026-12-05), with no parameter to tune:

  cross-fitted agreement: split the synthetic set in two halves at random; train the study's CNN on each half and
  label the other half with it; keep the images whose predicted label is the label they were sampled for.

It only reads the synthetic images (the output of a DP run), so it is post-processing: the run's ε holds unchanged.
Every set is measured three ways with the same CNN protocol as `evaluate` (chapter 10: 5 epochs, at least 300
steps, the real test split), two CNN seeds each:

  all        the whole synthetic set (the row's own figure, re-measured)
  filtered   the images the rule keeps (fewer than all: the comparison is against the filter)
  random     a random subset of the same size as `filtered` (the control: does the filter beat losing images?)

    python benchmarks/experiments/self_filter.py --sets fashion_mnist:/work/runs/study/long/long-fmnist-eps10-lr2e-3-snap/seed2 \
        mnist:/work/runs/study/long/long-mnist-eps10/seed1 --out benchmarks/results/self_filter.json

Each set is DATASET:FOLDER (the folder holds the row's synthetic.npz). Rows are appended to --out (a row measured
again replaces its old one).
"""

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

from dp_synth.classify import ClassifierConfig, downstream_accuracy, predict, train_classifier
from dp_synth.data import load_dataset
from dp_synth.evaluate import load_images
from dp_synth.files import atomic_path


def cross_fit_agreement(synth, cfg: ClassifierConfig, seed: int = 0) -> torch.Tensor:
    "Boolean mask: images whose label a CNN trained on the *other* half of the set predicts."
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(synth), generator=g)
    a, b = order[: len(synth) // 2].sort().values, order[len(synth) // 2 :].sort().values
    keep = torch.zeros(len(synth), dtype=torch.bool)
    for fit, judge in ((a, b), (b, a)):
        learn = train_classifier(synth.subset(fit), cfg, progress=False)
        part = synth.subset(judge)
        keep[judge] = predict(learn, part) == part.labels
    return keep


def measure(dataset: str, folder: Path, seeds=(0, 1)) -> dict:
    t0 = time.time()
    synth, test = load_images(folder / 'synthetic.npz'), load_dataset(dataset, 'test')
    cfg = ClassifierConfig()
    keep = cross_fit_agreement(synth, cfg)
    g = torch.Generator().manual_seed(1)
    rand = torch.randperm(len(synth), generator=g)[: int(keep.sum())].sort().values
    row = dict(dataset=dataset, folder=str(folder), n=len(synth), kept=int(keep.sum()),
               kept_by_class={c: round(float(keep[synth.labels == i].float().mean()), 3)
                              for i, c in enumerate(synth.classes)})  # fmt: skip
    for name, ds in (('all', synth), ('filtered', synth.subset(keep)), ('random', synth.subset(rand))):
        r = downstream_accuracy(ds, test, cfg, seeds, progress=False)
        row[name] = dict(accuracy=r['accuracy'], accuracies=r['accuracies'], n=len(ds))
        print(f"{folder.parent.name}/{folder.name} {name:8s} n={len(ds):5d} accuracy {100 * r['accuracy']:.2f}% "
              f"({', '.join(f'{100 * a:.2f}' for a in r['accuracies'])})", flush=True)  # fmt: skip
    row['seconds'] = round(time.time() - t0, 1)
    row['date'] = datetime.date.today().isoformat()
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sets', nargs='+', required=True, help='DATASET:FOLDER, the folder holding synthetic.npz')
    ap.add_argument('--out', type=Path, default=Path(__file__).parents[1] / 'results' / 'self_filter.json')
    a = ap.parse_args(argv)
    rows = json.loads(a.out.read_text()) if a.out.is_file() else []
    for s in a.sets:
        dataset, folder = s.split(':', 1)
        row = measure(dataset, Path(folder))
        rows = [r for r in rows if r['folder'] != row['folder']] + [row]
        with atomic_path(a.out) as tmp:  # (a crash mid-write keeps the rows measured before)
            tmp.write_text(json.dumps(rows, indent=1) + '\n')


if __name__ == '__main__':
    main()
