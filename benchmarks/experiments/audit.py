#!/usr/bin/env python
"""Privacy audits: the one-run ε lower bound (Steinke, Nasr & Jagielski 2023) against the accountant's claimed ε.

White-box: the real DP step of chapter 07 with Dirac gradient canaries (`dp_synth.audit.whitebox_audit`), at q = 1 and
one step with σ calibrated to the claim (where the accountant is tightest), each row --repeats independent audits
with secret seeds (each one a valid 95% bound on its own):

  real        the real step at claimed ε = 1, 4, 10 (and 1, 4 at --large canaries)
  sigma0      σ = 0 (nothing claimed): the bound reaches the one-run ceiling
  no_clip     a step that never clips, at claimed ε = 1 and 4
  low_noise   a step with σ/10, at claimed ε = 1 and 4
  demo-step   the real step at the demo's own mechanism (σ, q = 256/60,000, 50 steps, C = 0.3): what
              `dp_synth audit --from RUN` does for a demo run

Black-box: the real fine-tuning path of chapter 08 (`dp_synth.audit.blackbox_audit`): image canaries inserted by
secret coin flips, scored by the released EMA model's denoising loss against the public model's:

  dp-off      the demo's public model and optimiser with DP turned off (no noise, no clipping), many steps on a small
              MNIST subset: the attack's own strength
  demo        the demo setting (dp_synth.pipeline.DEMO: private MNIST, ε = 10, 50 steps of B = 256) plus the canaries

Appends a section to benchmarks/results/RESULTS.template.md and rows to benchmarks/results/audit.json (results.json holds the quality rows,
and its reader expects their FID fields).

    python benchmarks/experiments/audit.py                                 # CPU, size small: white-box seconds, black-box ~15 min
    python benchmarks/experiments/audit.py --parts whitebox                # seconds
    python benchmarks/experiments/audit.py --parts blackbox --size full --device cuda
    python benchmarks/experiments/audit.py --dry-run                       # tiny sizes, writes nothing: checks the plumbing
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from dp_synth.accounting import calibrate_sigma
from dp_synth.audit import blackbox_audit, epsilon_lower_bound, guess_counts, whitebox_audit
from dp_synth.data import load_dataset
from dp_synth.pipeline import DEMO

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import ROWS, append_section, command, machine, save_rows  # noqa: E402
from end_to_end import _device  # noqa: E402

AUDIT_JSON = ROWS / 'audit.json'
DELTA = 1e-5
# White-box rows: (name, claimed ε or None for σ = 0, broken, canaries key)
WHITEBOX = [
    ('real', 1.0, None, 'm'),
    ('real', 4.0, None, 'm'),
    ('real', 10.0, None, 'm'),
    ('sigma0', None, None, 'm'),
    ('no_clip', 1.0, 'no_clip', 'm'),
    ('no_clip', 4.0, 'no_clip', 'm'),
    ('low_noise', 1.0, 'low_noise', 'm'),
    ('low_noise', 4.0, 'low_noise', 'm'),
    ('real', 1.0, None, 'large'),
    ('real', 4.0, None, 'large'),
    ('sigma0', None, None, 'large'),
    ('demo-step', DEMO.finetune.epsilon, None, 'm'),
]
MNIST_N = 60_000  # the demo's private set size: q = B/N
# Black-box sizes. dp-off: the demo's model and optimiser, DP off, on the first n_private MNIST training images.
# demo: DEMO as it is (MNIST, 50 steps of B = 256 at ε = 10), plus the canaries; `demo_steps` trims the steps for CPU time.
SIZES = {
    'small': dict(dpoff=dict(n_private=16, canaries=64, batch_size=32, steps=300, K=1), demo=dict(canaries=500)),
    'full': dict(dpoff=dict(n_private=256, canaries=256, batch_size=256, steps=1000, K=4), demo=dict(canaries=1000)),
    'dry-run': dict(
        dpoff=dict(n_private=8, canaries=8, batch_size=8, steps=2, K=1, model='scratch:tiny'),
        demo=dict(canaries=8, steps=2, batch_size=16, n_private=64, model='scratch:tiny'),
    ),
}


def whitebox_rows(canaries: int, large: int, repeats: int) -> list:
    rows = []
    for kind, eps, broken, size in WHITEBOX:
        m = canaries if size == 'm' else large
        if not m:
            continue
        demo = DEMO.finetune
        q, T, C = (demo.batch_size / MNIST_N, demo.steps, demo.max_grad_norm) if kind == 'demo-step' else (1.0, 1, 1.0)
        sigma = 0.0 if eps is None else calibrate_sigma(eps, DELTA, q, T)
        t0 = time.time()
        runs = [
            whitebox_audit(sigma, q, T, C, canaries=m, delta=DELTA, broken=broken) for _ in range(repeats)
        ]  # secret seeds
        lows = [r.epsilon_lower for r in runs]
        d = runs[0].to_dict()
        rows.append(
            dict(
                row=f"whitebox-{kind}-{'eps%g' % eps if eps else 'none'}-m{m}",
                mode='white-box',
                kind=kind,
                broken=broken,
                epsilon_claimed=d['epsilon_claimed'],
                epsilon_lower=lows[0],
                epsilon_lower_all=lows,
                ceiling=epsilon_lower_bound(
                    m, max(guess_counts(m)), max(guess_counts(m)), DELTA, 1 - 0.05 / len(guess_counts(m))
                ),
                consistent_all=[r.consistent for r in runs],
                auc_all=[r.auc for r in runs],
                tpr_at_1pct_fpr_all=[r.tpr_at_1pct_fpr for r in runs],
                canaries=m,
                confidence=d['confidence'],
                delta=DELTA,
                noise_multiplier=sigma,
                sample_rate=q,
                steps=T,
                max_grad_norm=C,
                guesses=d['guesses'],
                correct=d['correct'],
                seconds=round(time.time() - t0, 2),
            )
        )
        print(
            json.dumps({k: rows[-1][k] for k in ('row', 'epsilon_claimed', 'epsilon_lower_all', 'seconds')}), flush=True
        )
    return rows


def blackbox_rows(size: str, out: Path, device: str) -> list:
    mnist, rows = load_dataset('mnist', 'train'), []
    dp, dm = dict(SIZES[size]['dpoff']), dict(SIZES[size]['demo'])
    base = replace(DEMO.finetune, central_sigma=0.0)  # the audit is of DP-SGD alone: no central images
    micro = dict(micro_batch_size=64, log_every=10**6, ckpt_every=10**6, device=device)
    jobs = [
        (
            'dp-off',
            replace(
                base,
                steps=dp['steps'],
                batch_size=dp['batch_size'],
                K=dp['K'],
                model=dp.get('model', base.model),
                **micro,
            ),
            mnist.subset(torch.arange(dp['n_private'])),
            dp['canaries'],
            False,
        ),
        (
            'demo',
            replace(
                base,
                steps=dm.get('steps', base.steps),
                batch_size=dm.get('batch_size', base.batch_size),
                model=dm.get('model', base.model),
                **micro,
            ),
            mnist.subset(torch.arange(dm['n_private'])) if 'n_private' in dm else mnist,
            dm['canaries'],
            True,
        ),
    ]
    for name, cfg, private, m, dp_on in jobs:
        r = blackbox_audit(cfg, out / name, canaries=m, private=private, dp=dp_on)  # secret seed
        d = r.to_dict()
        rows.append(
            dict(
                d,
                row=f'blackbox-{name}',
                kind=name,
                n_private=len(private),
                dataset=private.name,
                model=cfg.model,
                batch_size=cfg.batch_size,
                K=cfg.K,
                lr=cfg.lr,
            )
        )
        print(
            json.dumps({k: rows[-1][k] for k in ('row', 'epsilon_claimed', 'epsilon_lower', 'auc', 'seconds')}),
            flush=True,
        )
    return rows


def fmt_eps(e) -> str:
    return 'none (σ = 0)' if e is None else f'{e:.3g}'


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]),
    )
    ap.add_argument('--parts', nargs='+', default=['whitebox', 'blackbox'], choices=['whitebox', 'blackbox'])
    ap.add_argument('--canaries', type=int, default=1000, help='white-box canaries m (default: 1000)')
    ap.add_argument('--large', type=int, default=10_000, help='white-box canaries of the large rows (0: skip them)')
    ap.add_argument('--repeats', type=int, default=5, help='independent white-box audits per row (default: 5)')
    ap.add_argument('--size', default='small', choices=['small', 'full'], help='black-box size (small: a 2-core CPU)')
    ap.add_argument('--dry-run', action='store_true', help='tiny sizes; writes nothing to benchmarks/')
    ap.add_argument('--device', default='auto')
    ap.add_argument('--out', default='runs/audit', help='black-box run directories')
    a = ap.parse_args()
    size, dev = ('dry-run' if a.dry_run else a.size), _device(a.device)
    if a.dry_run:
        a.canaries, a.large, a.repeats = 50, 0, 1
    stamp = dict(machine=machine(dev), date=time.strftime('%Y-%m-%d'), torch=str(torch.__version__), command=command())
    rows = []
    if 'whitebox' in a.parts:
        rows += [dict(r, size='-', **stamp) for r in whitebox_rows(a.canaries, a.large, a.repeats)]
    if 'blackbox' in a.parts:
        rows += [dict(r, size=size, **stamp) for r in blackbox_rows(size, Path(a.out) / size, dev)]
    if a.dry_run:
        return
    save_rows({f"{r['row']}/{r['size']}/{r['machine']}": r for r in rows}, AUDIT_JSON)
    body = f"`{command()}`: one-run ε lower bound at 95% confidence, δ = {DELTA:g}, Bonferroni over the guess-count grid.\n"
    wb = [r for r in rows if r['mode'] == 'white-box']
    if wb:
        body += (
            f"\nWhite-box (the DP step with Dirac gradient canaries; q = 1 and one step, σ calibrated to the claim, except the "
            f"demo row; "
            f"{a.repeats} independent audits per row, secret seeds):\n\n"
            "| step | canaries | claimed ε | σ, q, steps | proven ε ≥ (each audit) | ceiling | AUC (first) | consistent |\n"
            "|---|---|---|---|---|---|---|---|\n"
            + ''.join(
                f"| {r['kind']} | {r['canaries']} | {fmt_eps(r['epsilon_claimed'])} | "
                f"{r['noise_multiplier']:.3f}, {r['sample_rate']:.3g}, {r['steps']} | "
                f"{', '.join(f'{e:.2f}' for e in r['epsilon_lower_all'])} | {r['ceiling']:.2f} | {r['auc_all'][0]:.3f} | "
                f"{sum(r['consistent_all'])}/{len(r['consistent_all'])} |\n"
                for r in wb
            )
        )
    bb = [r for r in rows if r['mode'] == 'black-box']
    if bb:
        body += (
            "\nBlack-box (through `finetune`; canaries scored by the released EMA model's denoising loss at t = 200, 300, 400, "
            "500 with 8 fixed noise draws each; one audit per row, secret seed; steps × B and q include the inserted "
            "canaries in N):\n\n"
            "| row | model | private set | canaries (in) | steps × B (q), K | claimed ε | σ | proven ε ≥ | AUC | TPR@1%FPR | seconds |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n"
            + ''.join(
                f"| {r['kind']} | {r['model']} | {r['dataset']}, N = {r['n_private']} | {r['canaries']} ({r['members']}) | "
                f"{r['steps']} × {r['batch_size']} ({r['sample_rate']:.3g}), {r['K']} | "
                f"{'none (DP off)' if r['epsilon_claimed'] is None else fmt_eps(r['epsilon_claimed'])} | "
                f"{r['noise_multiplier']:.3g} | {r['epsilon_lower']:.2f} | {r['auc']:.3f} | {r['tpr_at_1pct_fpr']:.3f} | "
                f"{r['seconds']:.0f} |\n"
                for r in bb
            )
        )
    parts = ' and '.join({'whitebox': 'white-box', 'blackbox': f'black-box (size {size})'}[p] for p in a.parts)
    append_section(f"Privacy audit: {parts}", dev, body)


if __name__ == '__main__':
    main()
