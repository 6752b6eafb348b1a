#!/usr/bin/env python
"""End to end: `dp_synth run` at several privacy budgets, next to the published anchors.

Each row is one complete run (DP fine-tuning to (ε, δ), class-balanced sampling, FID with N and its floor, CNN
accuracy on the real test set). Results go to benchmarks/results.json (one entry per row, replaced when rerun) and a
table is appended to benchmarks/RESULTS.md. The results tutorial plots ε against FID and accuracy from results.json.

    python benchmarks/end_to_end.py                                # CPU, size small: the demo's budget per row
    python benchmarks/end_to_end.py --rows mnist-eps10 --size full --device cuda
    python benchmarks/end_to_end.py --dry-run                      # a few steps per row: checks the plumbing

Anchors (DPDM, Dockhorn et al. 2023, trained from scratch with hours of GPU time, FID on 60k samples): MNIST ε = 10
FID 5.01 / 98.1%, ε = 1 FID 23.4 / 95.3%; Fashion-MNIST ε = 10 FID 18.6 / 86.2%. FIDs at different N are not
comparable: each row states its N and the real-data floor at that N.
"""
import argparse, datetime, json, os, platform, shlex, sys, time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from dp_synth.pipeline import DEMO, RunConfig, run

HERE = Path(__file__).parent
RESULTS, RESULTS_JSON = HERE/'RESULTS.md', HERE/'results.json'

ANCHORS = {  # (dataset, epsilon) -> DPDM's published figures (FID on 60k samples, CNN accuracy)
    ('mnist', 10.0): dict(fid=5.01, accuracy=0.981, source='DPDM (Dockhorn et al. 2023)'),
    ('mnist', 1.0): dict(fid=23.4, accuracy=0.953, source='DPDM (Dockhorn et al. 2023)'),
    ('fashion_mnist', 10.0): dict(fid=18.6, accuracy=0.862, source='DPDM (Dockhorn et al. 2023)'),
    ('fashion_mnist', 1.0): dict(fid=37.8, accuracy=0.794, source='DPDM (Dockhorn et al. 2023)'),
}

# Rows: the private dataset, ε, and the PUBLIC model (never one trained on the private dataset itself).
ROWS = {
    'mnist-eps10': dict(dataset='mnist', epsilon=10.0, model=DEMO.model),
    'mnist-eps1': dict(dataset='mnist', epsilon=1.0, model=DEMO.model),
    'fmnist-eps10': dict(dataset='fashion_mnist', epsilon=10.0, model='digits-small'),
}

SIZES = {   # everything but the row's dataset, ε and model
    'small': replace(DEMO, more_data='', memorisation='pixel'),                     # the demo's budget (CPU minutes)
    'full': replace(DEMO, steps=1500, batch_size=2048, K=4, lr=1e-3, max_grad_norm=1.0, n_synthetic=10000,
                    sample_steps=100, fid_n=10000, classifier_epochs=10, more_data='', memorisation='pixel'),  # GPU
    'dry-run': replace(DEMO, steps=3, batch_size=64, n_synthetic=40, sample_steps=3, fid_n=40, classifier_epochs=1,
                       more_data='', memorisation=''),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    ap.add_argument('--rows', nargs='+', default=list(ROWS), choices=list(ROWS))
    ap.add_argument('--size', default='small', choices=[s for s in SIZES if s != 'dry-run'])
    ap.add_argument('--dry-run', action='store_true', help='a few steps and images per row; writes nothing to benchmarks/')
    ap.add_argument('--device', default='auto'); ap.add_argument('--out', default='runs/bench', help='parent of the run directories')
    a = ap.parse_args()
    size = 'dry-run' if a.dry_run else a.size
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    rows = []
    for name in a.rows:
        cfg = replace(SIZES[size], **ROWS[name], device=a.device)
        t0 = time.time()
        res = run(cfg, Path(a.out)/f'{name}-{size}', progress=True, command=f'benchmarks/end_to_end.py --rows {name} --size {size}')
        s = res['summary']
        dev = torch.device('cuda' if cfg.device in ('auto', 'cuda') and torch.cuda.is_available() else 'cpu')
        row = dict(row=name, size=size, dataset=cfg.dataset, epsilon=s['epsilon_spent'], target_epsilon=cfg.epsilon, delta=s['delta'],
                   sigma=s['sigma'], sample_rate=s['sample_rate'], steps=s['steps'], public_model=cfg.model, fid=s['fid'],
                   fid_n=s['fid_n'], fid_floor=s['fid_floor'], fid_reference=s['fid_reference'], accuracy=s['accuracy'],
                   classifier=s['classifier'], n_synthetic=s['n_synthetic'], seconds=round(time.time() - t0, 1),
                   machine=(f"{platform.machine()}, {os.cpu_count()} CPU cores" if dev.type == 'cpu' else torch.cuda.get_device_name(dev)),
                   date=datetime.date.today().isoformat(), torch=torch.__version__, config=asdict(cfg),
                   anchor=ANCHORS.get((cfg.dataset, cfg.epsilon)))
        rows.append(row)
        print(json.dumps({k: row[k] for k in ('row', 'size', 'epsilon', 'fid', 'fid_n', 'fid_floor', 'accuracy', 'seconds')}), flush=True)
        if size != 'dry-run': results[f'{name}/{size}/{row["machine"]}'] = row
    if size == 'dry-run': return
    RESULTS_JSON.write_text(json.dumps(results, indent=1) + '\n')
    cmd = 'python benchmarks/end_to_end.py ' + ' '.join(map(shlex.quote, sys.argv[1:]))
    with open(RESULTS, 'a') as f:
        f.write(f"\n## End to end against the anchors ({datetime.date.today()}, {rows[0]['machine']}, size {size})\n\n`{cmd}`\n\n"
                "| row | public model | ε (δ) | steps, B, σ | FID (N; floor at N) | CNN accuracy | anchor FID / accuracy | seconds |\n"
                "|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            an = r['anchor']
            f.write(f"| {r['row']} | {r['public_model']} | {r['epsilon']:.3f} ({r['delta']:g}) | {r['steps']}, "
                    f"{r['config']['batch_size']}, {r['sigma']:.3f} | {r['fid']:.1f} ({r['fid_n']}; {r['fid_floor']}) | "
                    f"{100 * r['accuracy']:.1f}% | " + (f"{an['fid']} / {100 * an['accuracy']:.1f}% ({an['source']}, N = 60k)" if an else '—')
                    + f" | {r['seconds']:.0f} |\n")
    print(f'appended to {RESULTS}; {RESULTS_JSON} holds {len(results)} rows')


if __name__ == '__main__':
    main()
