#!/usr/bin/env python
"""Keep one fresh-machine demo run as a row of benchmarks/results/demo.json (fresh_demo.sh calls it at the end).

    python benchmarks/experiments/demo_row.py RUN_DIR --commit C --total-seconds S [--install-seconds S]

RUN_DIR is the demo's run folder (`runs/demo` of the fresh clone); its owner-only run.json gives the privacy
statement's headline, the evaluation and each stage's seconds. The row keeps only those figures, never a path or an
image of the private set. Torch-free.
"""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import ROWS, save_rows  # noqa: E402

# the figures of run.json's summary that a demo row keeps (the run folder's path is left out)
KEEP = ('epsilon_spent', 'delta', 'sigma', 'sample_rate', 'steps', 'fid', 'fid_n', 'fid_reference', 'fid_floor')
KEEP += ('accuracy', 'classifier', 'n_synthetic')


def demo_row(run_dir: Path, commit: str, total_seconds: float, install_seconds=None, command=None, note=None) -> dict:
    "The row of one demo run: its headline figures, its stages' seconds, the commit and the machine."
    run = json.loads((Path(run_dir) / 'run.json').read_text())
    row = {k: run['summary'][k] for k in KEEP}
    row.update(seconds=run['seconds'], demo_seconds=run['seconds']['total'], total_seconds=total_seconds)
    row.update(install_seconds=install_seconds, commit=commit, date=str(datetime.date.today()))
    row.update(machine=f'{platform.machine()}, {os.cpu_count()} CPU cores')
    row.update(command=command or 'bash benchmarks/experiments/fresh_demo.sh', **({'note': note} if note else {}))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run_dir', type=Path)
    ap.add_argument('--commit', required=True)
    ap.add_argument('--total-seconds', type=float, required=True, help='the whole command, install included')
    ap.add_argument('--install-seconds', type=float, help='the install part of it, when timed apart')
    ap.add_argument('--command', help='the command that made the run, when not fresh_demo.sh')
    ap.add_argument('--note', help='what sets this run apart (a warm cache, another --minutes, ...)')
    a = ap.parse_args()
    row = demo_row(a.run_dir, a.commit, a.total_seconds, a.install_seconds, a.command, a.note)
    key = f"fresh-demo/{row['date']}/{a.commit}"
    rows = json.loads((ROWS / 'demo.json').read_text()) if (ROWS / 'demo.json').is_file() else {}
    key += f'/run{1 + sum(k.startswith(key) for k in rows)}'
    save_rows({key: row}, ROWS / 'demo.json')
    print(f'saved {key} in {ROWS / "demo.json"}: accuracy {row["accuracy"]:.2%}, FID {row["fid"]:.2f}')


if __name__ == '__main__':
    main()
