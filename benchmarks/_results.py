"""What every benchmark script shares: the machine string, the command line, timing, and appending a section to RESULTS.md
(and, for the quality benchmarks, rows to results.json, which the results tutorial plots)."""

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent  # benchmarks/ of this repository, wherever the script is run from
RESULTS, RESULTS_JSON = HERE / 'RESULTS.md', HERE / 'results.json'
# Published figures to set our rows against (δ = 1e-5; FID on tens of thousands of samples, so comparable with ours only in
# kind: our rows state their N and the real-data floor at that N). Sources, quoted from the papers themselves:
#   DPDM: Dockhorn, Cao, Vahdat, Kreis, "Differentially Private Diffusion Models", TMLR 2023 (FID / CNN accuracy table);
#   DPImageBench: Chen et al., arXiv 2503.14681 (its re-implementation of the seed paper as "PDP-Diffusion");
#   the seed paper: Ghalebikesabi et al., "Differentially Private Diffusion Models Generate Useful Synthetic Images",
#   arXiv 2302.13861. Results are read from and written to this folder only: RESULTS.md and results.json beside this file.
ANCHORS = {  # (dataset, epsilon) -> figures
    ('mnist', 0.2): dict(fid=61.9, accuracy=0.863, source='DPDM (Dockhorn et al. 2023)'),
    ('mnist', 1.0): dict(fid=23.4, accuracy=0.953, source='DPDM (Dockhorn et al. 2023)'),
    ('mnist', 10.0): dict(fid=5.01, accuracy=0.981, source='DPDM (Dockhorn et al. 2023)'),
    ('fashion_mnist', 0.2): dict(fid=78.4, accuracy=0.723, source='DPDM (Dockhorn et al. 2023)'),
    ('fashion_mnist', 1.0): dict(fid=37.8, accuracy=0.794, source='DPDM (Dockhorn et al. 2023)'),
    ('fashion_mnist', 10.0): dict(fid=18.6, accuracy=0.862, source='DPDM (Dockhorn et al. 2023)'),
}
OTHER_ANCHORS = [  # accuracy only, or another setting: shown beside the plots, never as the same experiment
    dict(dataset='mnist', epsilon=1.0, accuracy=0.945, source='PDP-Diffusion in DPImageBench'),
    dict(dataset='mnist', epsilon=10.0, accuracy=0.974, source='PDP-Diffusion in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=1.0, accuracy=0.792, source='PDP-Diffusion in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=10.0, accuracy=0.854, source='PDP-Diffusion in DPImageBench'),
    dict(dataset='mnist', epsilon=1.0, accuracy=0.940, source='PrivImage in DPImageBench'),
    dict(dataset='mnist', epsilon=10.0, accuracy=0.978, source='PrivImage in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=1.0, accuracy=0.799, source='PrivImage in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=10.0, accuracy=0.871, source='PrivImage in DPImageBench'),
    dict(dataset='mnist', epsilon=1.0, accuracy=0.956, source='DP-FETA in DPImageBench'),
    dict(dataset='mnist', epsilon=10.0, accuracy=0.981, fid=3.4, source='DP-FETA in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=1.0, accuracy=0.817, source='DP-FETA in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=10.0, accuracy=0.873, source='DP-FETA in DPImageBench'),
    dict(dataset='mnist', epsilon=1.0, accuracy=0.803, source='DP-MERF in DPImageBench'),
    dict(dataset='mnist', epsilon=10.0, accuracy=0.813, fid=106.3, source='DP-MERF in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=1.0, accuracy=0.622, source='DP-MERF in DPImageBench'),
    dict(dataset='fashion_mnist', epsilon=10.0, accuracy=0.622, source='DP-MERF in DPImageBench'),
    dict(
        dataset='cifar10',
        epsilon=10.0,
        fid=9.8,
        accuracy=0.880,
        source='Ghalebikesabi et al. 2023 (ImageNet pre-training, all 10 classes)',
    ),
    dict(
        dataset='cifar10',
        epsilon=10.0,
        fid=18.4,
        accuracy=0.701,
        source='PDP-Diffusion in DPImageBench (ImageNet32 pre-training)',
    ),
]
HEADER = '# Benchmark results\n\nRows are appended by the scripts in this folder; each names its machine, date and command.\n'


def sync(device) -> None:
    "Wait for the GPU's queued work, so that a wall-clock time covers it (nothing to wait for on a CPU)."
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> float:
    "Median seconds of `repeats` calls of `fn()`, after one warm-up call."
    fn()
    sync(device)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def machine(device) -> str:
    "The machine in words: the GPU's name, or the CPU architecture and core count."
    dev = torch.device(device)
    return (
        torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f"{platform.machine()}, {os.cpu_count()} CPU cores"
    )


def command() -> str:
    "The command line that ran this script, as one would type it from the repository root."
    return ' '.join(['python', f'benchmarks/{Path(sys.argv[0]).name}', *map(shlex.quote, sys.argv[1:])])


def append_section(title: str, device, body: str, path: Path = RESULTS) -> None:
    "Append `## title (date, machine, torch)` and `body` to RESULTS.md."
    new = not path.exists()
    with open(path, 'a') as f:
        if new:
            f.write(HEADER)
        f.write(
            f"\n## {title} ({datetime.date.today()}, {machine(device)}, torch {torch.__version__})\n\n{body.rstrip()}\n"
        )
    print(f'appended to {path}')


def save_rows(rows: dict, path: Path = RESULTS_JSON) -> dict:
    "Merge `rows` (key -> row) into results.json, replacing rows with the same key; returns the whole file."
    results = json.loads(path.read_text()) if path.exists() else {}
    results.update(rows)
    path.write_text(json.dumps(results, indent=1, default=str) + '\n')
    return results
