#!/usr/bin/env python
"""Sampling throughput: images/s of the DDPM and DDIM samplers at several step counts.

Times `dp_synth.sampling.sample_images` (the path `dp_synth sample`, `evaluate` and `run` use) on a trained model:
class-balanced labels, one batch per call, uint8 out. Optional bf16 autocast and channels-last on a GPU. Appends a
row to benchmarks/results/RESULTS.template.md (machine, date, command, figures).

    python benchmarks/speed/sampling.py                                  # CPU: fmnist-small, 64 images, DDIM 10/25/50, DDPM 50/100
    python benchmarks/speed/sampling.py --device cuda --n 2048 --batch 1024 --ddim 10 25 50 100 --ddpm 100 250 1000 --bf16
"""

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

from dp_synth.checkpoints import load_pretrained
from dp_synth.sampling import sample_images
from dp_synth.unet import count_params

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import SPEED_JSON, append_section, command, row_key, save_rows, stamp  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default='fmnist-small', help='shipped checkpoint name or checkpoint path')
    ap.add_argument('--n', type=int, default=64, help='images per measurement')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--ddim', type=int, nargs='*', default=[10, 25, 50])
    ap.add_argument('--ddpm', type=int, nargs='*', default=[50, 100])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--bf16', action='store_true', help='bf16 autocast (CUDA)')
    ap.add_argument('--channels-last', action='store_true')
    ap.add_argument(
        '--compile', action='store_true', help='torch.compile the network (compile time is excluded by the warm-up)'
    )
    ap.add_argument(
        '--no-write',
        action='store_true',
        help="do not save rows (results/speed.json) nor append to RESULTS.md's template",
    )
    a = ap.parse_args()
    dev = torch.device(a.device)
    p = load_pretrained(a.model, device=str(dev))
    model = p.model.eval()
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if a.compile:
        model = torch.compile(model)
    amp = torch.autocast('cuda', dtype=torch.bfloat16) if a.bf16 and dev.type == 'cuda' else contextlib.nullcontext()
    rows = []
    with amp:
        sample_images(
            model,
            p.schedule,
            min(a.batch, a.n),
            p.image_shape,
            len(p.classes),
            steps=2,
            batch_size=a.batch,
            progress=False,
            device=dev,
        )  # warm-up
        for sampler, counts in (('ddim', a.ddim), ('ddpm', a.ddpm)):
            for s in counts:
                if dev.type == 'cuda':
                    torch.cuda.synchronize()
                t = time.perf_counter()
                x, _ = sample_images(
                    model,
                    p.schedule,
                    a.n,
                    p.image_shape,
                    len(p.classes),
                    sampler=sampler,
                    steps=s,
                    batch_size=a.batch,
                    progress=False,
                    device=dev,
                )
                if dev.type == 'cuda':
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t
                r = dict(
                    kind='sampling', **stamp(dev), model=a.model, parameters=count_params(model), n=a.n, batch=a.batch
                )
                r.update(bf16=a.bf16, channels_last=a.channels_last, compile=a.compile, sampler=sampler, steps=s)
                r.update(img_s=a.n / dt, net_s=a.n * s / dt)
                rows.append((row_key('sampling', dev, f'{a.model}-{sampler}{s}'), r))
                print(
                    f"{sampler} {s:4d} steps: {a.n / dt:8.2f} images/s ({a.n * s / dt:8.1f} network evaluations/s per image)",
                    flush=True,
                )
    if a.no_write:
        return
    save_rows(dict(rows), SPEED_JSON)
    body = (
        f"`{command()}`: model `{a.model}` ({count_params(model) / 1e6:.2f}M parameters, {'×'.join(map(str, p.image_shape))}), "
        f"{a.n} class-balanced images per measurement in batches of {a.batch}"
        f"{', bf16 autocast' if a.bf16 and dev.type == 'cuda' else ''}{', channels-last' if a.channels_last else ''}{', torch.compile' if a.compile else ''}.\n\n"
        "| sampler | steps | images/s | image-steps/s |\n|---|---|---|---|\n"
        + ''.join(
            f"| {r['sampler'].upper()} | {r['steps']} | {{{{speed:{k} img_s .2f}}}} | {{{{speed:{k} net_s .0f}}}} |\n"
            for k, r in rows
        )
    )
    append_section('Sampling throughput', dev, body)


if __name__ == '__main__':
    main()
