#!/usr/bin/env python
"""Ship a trained checkpoint with dp_synth: copy its release form into dp_synth/checkpoints/ and record it in the manifest.

    python tools/ship_checkpoint.py RUN_DIR NAME [--note TEXT]

RUN_DIR is a finished `dp_synth pretrain` run (it holds checkpoint.pt). The manifest entry records the file's size
and sha256 (checked by `load_pretrained` before every load), the exact command that produced the run, what it was
trained on, for how long and where, so anyone can reproduce it. Only public-data checkpoints may be shipped.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dp_synth.checkpoints import load_checkpoint, release_checkpoint  # noqa: E402

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run_dir')
    ap.add_argument('name')
    ap.add_argument('--note', default='')
    a = ap.parse_args()
    ck = load_checkpoint(Path(a.run_dir) / 'checkpoint.pt')
    if ck['meta'].get('private', True) or ck.get('ledger'):
        sys.exit('refusing to ship: this checkpoint was trained on private data')
    dest_dir = REPO / 'dp_synth' / 'checkpoints'
    rel = release_checkpoint(Path(a.run_dir) / 'checkpoint.pt', dest_dir / f'{a.name}.pt')
    m, cfg = ck['meta'], ck['train_config']
    entry = dict(
        rel,
        name=a.name,
        command=m['command'],
        dataset=ck['data']['dataset'],
        split=ck['data']['split'],
        public=True,
        image_shape=ck['data']['image_shape'],
        classes=ck['data']['classes'],
        preset=cfg['preset'],
        parameters=m['parameters'],
        steps=m['step'],
        batch_size=cfg['batch_size'],
        seed=m['seed'],
        train_seconds=round(m['seconds'], 1),
        final_loss=round(ck['history'][-1][1], 5) if ck['history'] else None,
        device=m['device'],
        machine=m['machine'],
        torch=m['torch'],
        dp_synth=m['dp_synth'],
        shipped=datetime.date.today().isoformat(),
        note=a.note,
    )
    if entry['dataset'].startswith('glyphs'):  # rendered from this machine's fonts: name each, with its licence
        from dp_synth.data import DATASETS, _glyph_fonts

        chars = ''.join(DATASETS[entry['dataset'].replace('-', '_')].classes)
        entry['fonts'] = [dict(name=f.name, package=f.package, licence=f.licence, sha256=f.sha256)
                          for f in _glyph_fonts(chars)]  # fmt: skip
    if entry['dataset'] in ('natural', 'natural_gray'):  # generated from public seeds, plus wallpaper photographs
        from dp_synth.data import data_dir
        from dp_synth.natural import NATURAL_CLASSES, find_photographs

        entry['families'] = NATURAL_CLASSES
        entry['photographs'] = [
            dict(file=p.path.name, package=p.package, licence=p.licence, sha256=p.sha256)
            for p in find_photographs(data_dir())
        ]
    mf = dest_dir / 'manifest.json'
    manifest = json.loads(mf.read_text()) if mf.exists() else {}
    manifest[a.name] = entry
    mf.write_text(json.dumps(manifest, indent=1) + '\n')
    print(json.dumps(entry, indent=1))
