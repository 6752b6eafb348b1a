#!/usr/bin/env python
"""FID of one trained model under several samplers: the same 1,000 class-balanced labels and seeds, only the sampler
changes (post-processing: no ε). Prints one JSON line per sampler; with --save TAG also keeps them as rows of
benchmarks/results/sampler_sweep.json (keys TAG/SAMPLER...), which RESULTS.md's template renders.

    python benchmarks/experiments/sampler_sweep.py runs/demo/finetune/model.pt \
        --samplers ddim:20 ddpm:20 ddpm:20:quadratic ddpm:30 ddpm:50
    python benchmarks/experiments/sampler_sweep.py runs/demo/finetune/model.pt --samplers ddpm:20 \
        --raw-from runs/demo/finetune/checkpoint.pt      # the raw weights of the last step instead of the EMA

A sampler is NAME:STEPS[:SPACING] (ddim or ddpm; uniform or quadratic spacing). FID is against MNIST's training
reference statistics (`--dataset` to change), without the real-data floor (it is stored with the reference).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from dp_synth.checkpoints import load_pretrained
from dp_synth.fid import fid, reference_stats
from dp_synth.sampling import sample_images, step_schedule

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import ROWS, save_rows, stamp  # noqa: E402


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]),
    )
    ap.add_argument('model', help='a checkpoint path or a shipped name')
    ap.add_argument('--samplers', nargs='+', default=['ddim:20', 'ddpm:20'], help='NAME:STEPS[:SPACING] each')
    ap.add_argument('--raw-from', default='', help="a fine-tuning checkpoint.pt: sample its raw weights, not the EMA's")
    ap.add_argument('--dataset', default='mnist', help='the FID reference (its training split)')
    ap.add_argument('--n', type=int, default=1000, help='images per sampler (default: 1000)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--save', metavar='TAG', help='also save the rows in results/sampler_sweep.json under TAG/...')
    a = ap.parse_args()
    ref = reference_stats(a.dataset, 'train')
    p = load_pretrained(a.model, device='cpu')
    if a.raw_from:
        p.model.load_state_dict(torch.load(a.raw_from, map_location='cpu', weights_only=False)['model'])
        p.model.eval()
    rows = {}
    for spec in a.samplers:
        name, steps, spacing = (spec.split(':') + ['uniform'])[:3]
        t0 = time.time()
        x, _ = sample_images(
            p.model,
            p.schedule,
            a.n,
            p.image_shape,
            len(p.classes),
            sampler=name,
            steps=step_schedule(int(steps), p.schedule.T, spacing),
            batch_size=250,
            seed=a.seed,
            progress=False,
        )
        t_sample = time.time() - t0
        r = fid(x, reference=ref, floor=False, progress=False)
        weights = 'raw' if a.raw_from else 'ema'
        row = dict(model=a.model, weights=weights, sampler=name, steps=int(steps), spacing=spacing, n=a.n)
        row.update(dataset=a.dataset, fid=round(r.fid, 1), sample_seconds=round(t_sample))
        print(json.dumps(row), flush=True)
        key = (
            f'{a.save}/{name}{steps}' + ('' if spacing == 'uniform' else f'-{spacing}') + ('-raw' if a.raw_from else '')
        )
        rows[key] = dict(row, **stamp('cpu'))
    if a.save:
        save_rows(rows, ROWS / 'sampler_sweep.json')


if __name__ == '__main__':
    main()
