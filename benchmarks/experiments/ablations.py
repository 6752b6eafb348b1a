#!/usr/bin/env python
"""Ablations on MNIST at ε = 10 at a fixed compute budget, and the CIFAR-10 transfer proxy.

Every MNIST row spends the same ε = 10 (δ = 1e-5) and the same compute: the same number of DP steps, each on
B·K rows, B·K being the base row's batch size (256 at size small, 1,024 at full: so K = 16 at size small means
B = 16 examples with 16 augmented copies each), the same sampler and evaluation.
Each group changes one thing against the base row (K = 1, public model fmnist-small, uniform timesteps):

  multiplicity   K = 1, 4, 16 at a fixed B·K
  public         the public pre-training: Fashion-MNIST (fmnist-small, shipped: 4,000 steps), CIFAR-10 in grayscale
                 (pre-trained here on public data, the size's pre-training steps), or none (a fresh UNet: DP training
                 from scratch). (The shipped digits-small is compared in chapter 05.)
  timesteps      uniform against biased timestep sampling during fine-tuning
  cifar-proxy    the seed paper's transfer setting without ImageNet: pre-train on CIFAR-10's four vehicle classes
                 (public), DP fine-tune on its six animal classes (private); FID on animal images and classifier
                 accuracy on the animal test set (WRN-16-4 at full size; the small CNN at CPU size, where a WRN
                 takes 35 minutes a row); and the same from scratch

The public models that are trained here are trained on public data only (CIFAR-10 in grayscale for the MNIST
rows, the vehicle classes for the animal rows), with the command recorded in their checkpoints. Rows go to
benchmarks/results/results.json (replaced when rerun) and a table per group to RESULTS.md.

    python benchmarks/experiments/ablations.py                              # CPU, size small (all groups, about an hour on 2 cores)
    python benchmarks/experiments/ablations.py --groups public --size full --device cuda
    python benchmarks/experiments/ablations.py --dry-run                    # a few steps per row: checks the plumbing
"""

import argparse
import sys
from pathlib import Path

from dp_synth.checkpoints import release_checkpoint
from dp_synth.pipeline import DEMO
from dp_synth.train import TrainConfig, train

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import append_section, command, save_rows  # noqa: E402
from end_to_end import _device, run_row  # noqa: E402

# Sizes: the shared run settings of the MNIST rows, the CIFAR rows, and the pre-training steps of the public models
# trained here. 'small' fits a 2-core CPU; 'full' is the GPU size.
SIZES = {
    'small': dict(
        mnist=DEMO.replace(
            steps=15,
            batch_size=256,
            n_synthetic=250,
            fid_n=250,
            sample_steps=20,
            classifier_epochs=3,
            more_data='',
            memorisation='',
        ),
        cifar=DEMO.replace(
            steps=20,
            batch_size=256,
            n_synthetic=300,
            fid_n=300,
            fid_reference_n=600,
            sample_steps=20,
            classifier='cnn',
            classifier_epochs=5,
            more_data='',
            memorisation='',
        ),  # WRN-16-4: 35 CPU min a row
        pretrain_steps={'cifar10-gray': 120, 'cifar10-vehicles': 250},
    ),
    'full': dict(
        mnist=DEMO.replace(
            steps=1000,
            batch_size=1024,
            lr=1e-3,
            max_grad_norm=1.0,
            n_synthetic=10000,
            fid_n=10000,
            sample_steps=100,
            classifier_epochs=10,
            more_data='',
            memorisation='',
        ),
        cifar=DEMO.replace(
            steps=1000,
            batch_size=1024,
            lr=1e-3,
            max_grad_norm=1.0,
            n_synthetic=10000,
            fid_n=10000,
            sample_steps=100,
            classifier_epochs=20,
            more_data='',
            memorisation='',
        ),
        pretrain_steps={'cifar10-gray': 20000, 'cifar10-vehicles': 20000},
    ),
    'dry-run': dict(
        mnist=DEMO.replace(
            steps=2,
            batch_size=64,
            warm_start_steps=2,
            n_synthetic=20,
            fid_n=20,
            sample_steps=2,
            classifier_epochs=1,
            more_data='',
            memorisation='',
        ),
        cifar=DEMO.replace(
            steps=2,
            batch_size=64,
            warm_start_steps=2,
            n_synthetic=12,
            fid_n=12,
            fid_reference_n=24,
            sample_steps=2,
            classifier_epochs=1,
            more_data='',
            memorisation='',
        ),
        pretrain_steps={'cifar10-gray': 2, 'cifar10-vehicles': 2},
    ),
}

# group -> rows; a row is (name, what changes against the base row). 'base' is shared by three groups and runs once.
GROUPS = {
    'multiplicity': [('base', {}), ('K4', dict(K=4)), ('K16', dict(K=16))],
    'public': [
        ('base', {}),
        ('public-cifar10-gray', dict(model='@cifar10-gray')),
        ('public-none', dict(model='scratch')),
    ],
    'timesteps': [('base', {}), ('timesteps-biased', dict(timesteps='biased'))],
    'cifar-proxy': [('cifar-transfer', dict(model='@cifar10-vehicles')), ('cifar-scratch', dict(model='scratch'))],
}
# Public models trained here: name -> TrainConfig fields (public data only).
PUBLIC = {
    'cifar10-gray': dict(dataset='cifar10', channels=1, image_size=28, preset='small', batch_size=64, lr=5e-4),
    'cifar10-vehicles': dict(
        dataset='cifar10-vehicles', image_size=32, preset='small', batch_size=64, lr=5e-4, flip=True
    ),
}


def public_model(name: str, steps: int, out: Path, device: str) -> str:
    "Pre-train (or reuse) the public model `name` on public data; returns its released checkpoint path."
    path = out / f'public-{name}' / 'model.pt'
    if not path.is_file():
        r = train(
            TrainConfig(**PUBLIC[name], steps=steps, device=device, sample_every=0),
            out / f'public-{name}',
            resume=True,
            command=f'{command()}  # public model {name}',
        )
        if not r.finished:
            raise SystemExit(f'pre-training {name} stopped early; run the same command again to continue')
        release_checkpoint(r.checkpoint, path)
    return str(path)


def row_config(group: str, change: dict, size: str, out: Path, device: str):
    base = SIZES[size]['cifar' if group == 'cifar-proxy' else 'mnist']
    change = dict(change)
    if group == 'cifar-proxy':
        change['dataset'] = 'cifar10-animals'
    if 'K' in change:
        change['batch_size'] = base.finetune.batch_size // change['K']  # B·K fixed at the base row's batch size
    if str(change.get('model', '')).startswith('@'):
        change['model'] = public_model(
            change['model'][1:], SIZES[size]['pretrain_steps'][change['model'][1:]], out, device
        )
    return base.replace(**change, device=device)


def describe(r: dict) -> str:
    c = r['config']
    m = (
        Path(c['model']).parent.name.removeprefix('public-') + f" (pre-trained here, {r['pretrain_steps']} steps)"
        if r.get('pretrain_steps')
        else c['model']
    )
    return f"K = {c['K']}, B = {c['batch_size']}, {m}, {c['timesteps']} timesteps"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]),
    )
    ap.add_argument('--groups', nargs='+', default=list(GROUPS), choices=list(GROUPS))
    ap.add_argument('--size', default='small', choices=['small', 'full'])
    ap.add_argument(
        '--dry-run', action='store_true', help='a few steps and images per row; writes nothing to benchmarks/'
    )
    ap.add_argument('--device', default='auto')
    ap.add_argument('--out', default='runs/ablations', help='parent of the run directories')
    a = ap.parse_args()
    size, out = ('dry-run' if a.dry_run else a.size), Path(a.out)
    done = {}
    for group in a.groups:
        rows = []
        for name, change in GROUPS[group]:
            if name not in done:
                cfg = row_config(group, change, size, out / size, a.device)
                pub = str(change.get('model', ''))
                extra = dict(pretrain_steps=SIZES[size]['pretrain_steps'][pub[1:]]) if pub.startswith('@') else {}
                done[name] = run_row(name, cfg, out / size / name, size, group=group, **extra)
            rows.append(dict(done[name], group=group))
        if size == 'dry-run':
            continue
        save_rows({f'{r["row"]}/{group}/{size}/{r["machine"]}': r for r in rows})
        body = (
            f"`{command()}`, group **{group}**: each row {rows[0]['steps']} DP steps to ε = {rows[0]['target_epsilon']:g} "
            f"(δ = {rows[0]['delta']:g}) on {rows[0]['dataset']}, {rows[0]['n_synthetic']} synthetic images.\n\n"
            "| row | what changes | ε spent | σ | FID (N; floor at N) | accuracy (classifier) | seconds |\n|---|---|---|---|---|---|---|\n"
            + ''.join(
                f"| {r['row']} | {describe(r)} | {r['epsilon']:.3f} | {r['sigma']:.3f} | {r['fid']:.1f} ({r['fid_n']}; "
                f"{r['fid_floor']}) | {100 * r['accuracy']:.1f}% ({r['classifier']}) | {r['seconds']:.0f} |\n"
                for r in rows
            )
        )
        append_section(f'Ablation: {group}, size {size}', _device(a.device), body)


if __name__ == '__main__':
    main()
