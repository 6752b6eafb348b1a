"""What every benchmark script shares: where the row files live, the machine string, the command line, timing, saving
rows, and adding a hand-kept section to RESULTS.md's template (RESULTS.md itself is rendered from the rows by
`benchmarks/render.py`).

The scripts live in benchmarks/speed/, benchmarks/experiments/ and benchmarks/gpu/ and import this module as a sibling
of their folder (`sys.path.insert(0, str(Path(__file__).parents[1]))`); torch is imported only by the helpers that
time or name a device, so the renderer and the tests of the results pages read the rows without it."""

import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

# benchmarks/ of this repository, wherever the script is run from
HERE = Path(__file__).resolve().parent
# the row files, one per kind of row: results.json (end-to-end and ablation rows), study.json, audit.json,
# gpu_fmnist.json, self_filter.json, per_class_fmnist.json, ceiling_fmnist_real.json, speed.json (throughput),
# demo.json (the README's demo on a fresh machine), sampler_sweep.json (one model under several samplers)
# (DP_SYNTH_BENCH_RESULTS names another folder holding the row files and the template, RESULTS.md rendered beside
# them: how the tests run a script's writing path without touching the repository's rows)
ROWS = Path(os.environ.get('DP_SYNTH_BENCH_RESULTS') or HERE / 'results')
RESULTS_JSON = ROWS / 'results.json'
# throughput of the DP step, FID features, sampling, and the evaluation path (benchmarks/speed/)
SPEED_JSON = ROWS / 'speed.json'
# RESULTS.md is rendered (benchmarks/render.py) from the rows and this template of hand-kept prose and sections
RESULTS = ROWS / 'RESULTS.md' if os.environ.get('DP_SYNTH_BENCH_RESULTS') else HERE / 'RESULTS.md'
TEMPLATE = ROWS / 'RESULTS.template.md'
# Published figures to set our rows against (δ = 1e-5; FID on tens of thousands of samples, so comparable with ours only in
# kind: our rows state their N and the real-data floor at that N). Sources, quoted from the papers themselves:
#   DPDM: Dockhorn, Cao, Vahdat, Kreis, "Differentially Private Diffusion Models", TMLR 2023 (FID / CNN accuracy table);
#   DPImageBench: Chen et al., arXiv 2503.14681 (its re-implementation of the seed paper as "PDP-Diffusion");
#   the seed paper: Ghalebikesabi et al., "Differentially Private Diffusion Models Generate Useful Synthetic Images",
#   arXiv 2302.13861. Rows are read from and written to benchmarks/results/ only.
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


def sync(device) -> None:
    "Wait for the GPU's queued work, so that a wall-clock time covers it (nothing to wait for on a CPU)."
    import torch

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
    import torch

    dev = torch.device(device)
    return (
        torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f"{platform.machine()}, {os.cpu_count()} CPU cores"
    )


def command() -> str:
    "The command line that ran this script, as one would type it from the repository root."
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(HERE.parent).as_posix() if script.is_relative_to(HERE.parent) else script.name
    return ' '.join(['python', name, *map(shlex.quote, sys.argv[1:])])


def append_section(title: str, device, body: str, path: Path = TEMPLATE) -> None:
    """Append `## title (date, machine, torch)` and `body` to RESULTS.md's template, then render RESULTS.md again.

    The section is kept by hand from then on: a measured figure that should follow its rows is written in it as a
    placeholder (`{{study:ROW@SEED accuracy}}`, see benchmarks/render.py)."""
    import torch

    from render import render_results

    with open(path, 'a') as f:
        f.write(
            f"\n## {title} ({datetime.date.today()}, {machine(device)}, torch {torch.__version__})\n\n{body.rstrip()}\n"
        )
    if path == TEMPLATE:
        RESULTS.write_text(render_results())
    print(f'appended to {path}')


def stamp(device) -> dict:
    "Where and when a row was measured: date, machine, torch version and the command line (every script's rows carry it)."
    import torch

    return dict(date=str(datetime.date.today()), machine=machine(device), torch=torch.__version__, command=command())


def row_key(kind: str, device, name) -> str:
    "A speed row's key: `kind/date/machine/name` (the machine shortened to letters and digits), unique per measurement."
    slug = ''.join(c for c in machine(device) if c.isalnum()).lower()
    return f'{kind}/{datetime.date.today()}/{slug}/{name}'


def save_rows(rows: dict, path: Path = RESULTS_JSON) -> dict:
    "Merge `rows` (key -> row) into a row file (results.json by default), replacing rows with the same key; returns it."
    results = json.loads(path.read_text()) if path.exists() else {}
    results.update(rows)
    path.write_text(json.dumps(results, indent=1, default=str) + '\n')
    return results
