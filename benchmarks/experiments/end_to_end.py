#!/usr/bin/env python
"""End to end: `dp_synth run` at several privacy budgets, next to the published anchors.

Each row is one complete run (DP fine-tuning to (ε, δ), class-balanced sampling, FID with N and its floor, CNN
accuracy on the real test set). Results go to benchmarks/results/results.json (one entry per row, replaced when rerun) and a
table is appended to benchmarks/results/RESULTS.template.md. The results tutorial plots ε against FID and accuracy from results.json.

    python benchmarks/experiments/end_to_end.py                                # CPU, size small: the demo's budget per row
    python benchmarks/experiments/end_to_end.py --rows mnist-eps10 --size full --device cuda
    python benchmarks/experiments/end_to_end.py --dry-run                      # a few steps per row: checks the plumbing

Anchors (DPDM, Dockhorn et al. 2023, trained from scratch with hours of GPU time, FID on 60k samples): MNIST ε = 10
FID 5.01 / 98.1%, ε = 1 FID 23.4 / 95.3%; Fashion-MNIST ε = 10 FID 18.6 / 86.2%. FIDs at different N are not
comparable: each row states its N and the real-data floor at that N.
"""

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from dp_synth.pipeline import DEMO, RunConfig, run

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import ANCHORS, RESULTS_JSON, append_section, command, machine, save_rows, timed  # noqa: E402

# Rows: the private dataset, ε, and the PUBLIC model (never one trained on the private dataset itself).
ROWS = {
    'mnist-eps10': dict(dataset='mnist', epsilon=10.0, model=DEMO.finetune.model),
    'mnist-eps1': dict(dataset='mnist', epsilon=1.0, model=DEMO.finetune.model),
    'fmnist-eps10': dict(dataset='fashion_mnist', epsilon=10.0, model='digits-small'),
}

SIZES = {  # everything but the row's dataset, ε and model
    'small': DEMO.replace(more_data='', memorisation='pixel'),  # the demo's budget (CPU minutes)
    'full': DEMO.replace(
        steps=1500,
        batch_size=2048,
        K=4,
        lr=1e-3,
        max_grad_norm=1.0,
        micro_batch_size=512,
        n_synthetic=10000,
        sample_steps=100,
        fid_n=10000,
        classifier_epochs=10,
        more_data='',
        memorisation='pixel',
    ),  # GPU
    'dry-run': DEMO.replace(
        steps=3,
        batch_size=64,
        warm_start_steps=2,
        n_synthetic=40,
        sample_steps=3,
        fid_n=40,
        classifier_epochs=1,
        more_data='',
        memorisation='',
    ),
}


def _device(device: str) -> str:
    return 'cuda' if device in ('auto', 'cuda') and torch.cuda.is_available() else 'cpu'


def flat_config(cfg: RunConfig) -> dict:
    "`cfg` as flat settings (the names `RunConfig.flat` and `dp_synth run` take): the `config` of a results row."
    return {name: getattr(getattr(cfg, stage), f.name) for name, stage, f in cfg.flags()}


def fit_steps(cfg: RunConfig, minutes: float, repeats: int = 3) -> int:
    """The number of DP steps of `cfg` that fit in `minutes` on this machine (at most `cfg.finetune.steps`, at least 10).

    The median of `repeats` timed steps (after a warm-up) of the real DP step (public model, B, K, micro-batches) on random data of the
    private images' shape. It reads no private data, so choosing the step count from it costs no privacy budget."""
    from dp_synth.checkpoints import load_pretrained
    from dp_synth.dpsgd import DPSGD
    from dp_synth.objective import DiffusionObjective, diffusion_loss_fn, timestep_sampler

    from dp_synth.finetune import fit_to_data

    ft = cfg.finetune
    dev = torch.device(_device(ft.device))
    base = load_pretrained(ft.model, device=str(dev))
    ft = fit_to_data(ft, 60000, base.image_shape)  # (settings left at 0, as a run makes them; MNIST's N)
    model = base.model.train()
    dp = DPSGD(
        model,
        torch.optim.Adam(model.parameters(), lr=ft.lr),
        1.0,
        ft.max_grad_norm,
        ft.batch_size / 60000,
        60000,
        ft.micro_batch_size,
        amp=dev.type == 'cuda',
    )
    obj = DiffusionObjective(
        base.schedule, ft.K, timestep_sampler(ft.timesteps, base.schedule.T), null_class=model.null_class
    )
    loss_fn, g = diffusion_loss_fn(obj), torch.Generator(device=dev).manual_seed(0)
    x0 = torch.randn(ft.batch_size, *base.image_shape, device=dev)
    y = torch.randint(0, len(base.classes), (ft.batch_size,), device=dev)

    def step():
        d = obj.draw(x0, g)
        dp.step(loss_fn, (x0, y, d.t, d.noise, d.flip, d.drop), g)

    per_step = timed(step, dev, repeats)
    n = min(ft.steps, max(10, int(minutes * 60 / per_step)))
    print(
        f'one DP step of B = {ft.batch_size}, K = {ft.K} takes {per_step:.3f} s here: {n} steps fit in {minutes:g} min',
        flush=True,
    )
    return n


def run_row(name: str, cfg: RunConfig, out_dir, size: str, group: str = 'end to end', **extra) -> dict:
    "One complete `dp_synth run` at `cfg`, as a results row (figures, privacy, config, machine, seconds)."
    t0 = time.time()
    res = run(cfg, Path(out_dir), progress=True, command=f'{command()}  # row {name}')
    s, ft = res.summary(), cfg.finetune
    dev = _device(ft.device)
    row = dict(
        row=name,
        group=group,
        size=size,
        dataset=ft.dataset,
        epsilon=s['epsilon_spent'],
        target_epsilon=ft.epsilon,
        delta=s['delta'],
        sigma=s['sigma'],
        sample_rate=s['sample_rate'],
        steps=s['steps'],
        public_model=ft.model,
        fid=s['fid'],
        fid_network=res.evaluation.fid_network,
        fid_n=s['fid_n'],
        fid_floor=s['fid_floor'],
        fid_reference=s['fid_reference'],
        accuracy=s['accuracy'],
        classifier=s['classifier'],
        n_synthetic=s['n_synthetic'],
        seconds=round(time.time() - t0, 1),
        stage_seconds=res.seconds,
        machine=machine(dev),
        date=datetime.date.today().isoformat(),
        torch=torch.__version__,
        config=flat_config(cfg),
        anchor=ANCHORS.get((ft.dataset, ft.epsilon)),
        **extra,
    )
    print(
        json.dumps({k: row[k] for k in ('row', 'size', 'epsilon', 'fid', 'fid_n', 'fid_floor', 'accuracy', 'seconds')}),
        flush=True,
    )
    return row


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]),
    )
    ap.add_argument('--rows', nargs='+', default=list(ROWS), choices=list(ROWS))
    ap.add_argument('--size', default='small', choices=[s for s in SIZES if s != 'dry-run'])
    ap.add_argument(
        '--dry-run', action='store_true', help='a few steps and images per row; writes nothing to benchmarks/'
    )
    ap.add_argument('--device', default='auto')
    ap.add_argument('--out', default='runs/bench', help='parent of the run directories')
    ap.add_argument(
        '--finetune-minutes',
        type=float,
        default=0,
        help="fit the DP steps to this many minutes of fine-tuning (timed on random data first; 0: the size's steps)",
    )
    a = ap.parse_args()
    size = 'dry-run' if a.dry_run else a.size
    rows = []
    for name in a.rows:
        cfg = SIZES[size].replace(**ROWS[name], device=a.device)
        if a.finetune_minutes:
            cfg = cfg.replace(steps=fit_steps(cfg, a.finetune_minutes))
        rows.append(run_row(name, cfg, Path(a.out) / f'{name}-{size}', size))
    if size == 'dry-run':
        return
    results = save_rows({f'{r["row"]}/{size}/{r["machine"]}': r for r in rows})
    body = (
        f"`{command()}`\n\n| row | public model | ε (δ) | steps, B, σ | FID (N; floor at N) | CNN accuracy | "
        "anchor FID / accuracy | seconds |\n|---|---|---|---|---|---|---|---|\n"
    )
    for r in rows:
        an = r['anchor']
        body += (
            f"| {r['row']} | {r['public_model']} | {r['epsilon']:.3f} ({r['delta']:g}) | {r['steps']}, {r['config']['batch_size']}, "
            f"{r['sigma']:.3f} | {r['fid']:.1f} ({r['fid_n']}; {r['fid_floor']}) | {100 * r['accuracy']:.1f}% | "
            + (f"{an['fid']} / {100 * an['accuracy']:.1f}% ({an['source']}, N = 60k)" if an else '—')
            + f" | {r['seconds']:.0f} |\n"
        )
    append_section(f'End to end against the anchors, size {size}', _device(a.device), body)
    print(f'{RESULTS_JSON} holds {len(results)} rows')


if __name__ == '__main__':
    main()
