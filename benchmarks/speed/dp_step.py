#!/usr/bin/env python
"""DP step throughput: dp_synth's torch.func step against a non-private step on the same rows and Opacus's hooks.

For each augmentation multiplicity K, a logical batch of B examples becomes B·K rows (each example's K copies, with
their own timestep and noise). Three ways of taking one optimiser step on them are timed in the same process:

  non-private   forward + backward of the mean loss over the B·K rows (in physical chunks of --rows rows), then Adam;
  dp_synth      per-example gradients with torch.func (vmap over examples, micro-batches of --rows/K examples),
                flat clipping, one Gaussian draw, Adam: `dp_synth.dpsgd.DPSGD.step`;
  opacus hooks  Opacus GradSampleModule per-row gradients on the same chunks, summed per example (K rows each),
                clipped, noised, Adam: the same mathematics through Opacus's hook-based per-sample gradients.

Reports examples/s and the ratio of each DP step's time to the non-private step's, saves a row per K in
benchmarks/results/speed.json (machine, date, command, figures) and appends a section to RESULTS.md's template whose
table renders those rows (benchmarks/render.py).

    python benchmarks/speed/dp_step.py                       # CPU, small UNet, K = 1 4 16
    python benchmarks/speed/dp_step.py --device cuda --batch 256 --rows 1024 --preset base
"""

import argparse
import sys
from pathlib import Path

import torch

from dp_synth.dpsgd import DPSGD, clip_and_sum
from dp_synth.objective import DiffusionObjective, diffusion_loss_fn
from dp_synth.schedule import NoiseSchedule
from dp_synth.unet import UNet, count_params, unet_config

sys.path.insert(0, str(Path(__file__).parents[1]))
from _results import SPEED_JSON, append_section, command, row_key, save_rows, stamp, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--preset', default='small')
    ap.add_argument('--image-size', type=int, default=28)
    ap.add_argument('--batch', type=int, default=32, help='examples per logical batch (B)')
    ap.add_argument('--rows', type=int, default=128, help='rows (example copies) per physical chunk')
    ap.add_argument('--K', type=int, nargs='+', default=[1, 4, 16])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--no-opacus', action='store_true')
    ap.add_argument(
        '--no-write',
        action='store_true',
        help="do not save rows (results/speed.json) nor append to RESULTS.md's template",
    )
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = UNet(unet_config(a.preset, image_size=a.image_size)).to(dev).train()
    for p in model.out.parameters():
        torch.nn.init.normal_(p, std=0.02)
    sched = NoiseSchedule().to(dev)
    rows = []
    for K in a.K:
        obj = DiffusionObjective(sched, K=K, null_class=model.null_class)
        x0 = torch.randn(a.batch, 1, a.image_size, a.image_size, device=dev)
        y = torch.randint(0, 10, (a.batch,), device=dev)
        d = obj.draw(x0, torch.Generator(device=dev).manual_seed(K))
        opt = torch.optim.Adam(model.parameters(), lr=1e-6)
        per_chunk = max(1, a.rows // K)  # examples per physical chunk

        def nonprivate():
            opt.zero_grad()
            for i in range(0, a.batch, per_chunk):
                (
                    obj.loss(
                        model,
                        x0[i : i + per_chunk],
                        y[i : i + per_chunk],
                        d[list(range(i, min(i + per_chunk, a.batch)))],
                    ).sum()
                    / a.batch
                ).backward()
            opt.step()

        dp = DPSGD(
            model,
            opt,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            sample_rate=a.batch / 60000,
            dataset_size=60000,
            micro_batch_size=per_chunk,
        )
        loss_fn = diffusion_loss_fn(obj)

        def dpsynth():
            dp.step(loss_fn, (x0, y, d.t, d.noise, d.flip, d.drop), torch.Generator(device=dev).manual_seed(0))

        t_np = timed(nonprivate, dev, a.repeats)
        t_dp = timed(dpsynth, dev, a.repeats)
        t_op = float('nan')
        if not a.no_opacus:
            from opacus import GradSampleModule

            gsm = GradSampleModule(model, loss_reduction='sum')
            gsm.null_class = model.null_class
            params = [p for p in model.parameters() if p.requires_grad]

            def opacus_step():
                sums = [torch.zeros_like(p) for p in params]
                for i in range(0, a.batch, per_chunk):
                    idx = list(range(i, min(i + per_chunk, a.batch)))
                    obj.loss(gsm, x0[idx], y[idx], d[idx]).sum().backward()
                    G = {j: p.grad_sample.reshape(len(idx), K, *p.shape).sum(1) for j, p in enumerate(params)}
                    s, _, _ = clip_and_sum(G, 1.0)
                    for j in range(len(params)):
                        sums[j] += s[j]
                    for p in params:
                        p.grad_sample = None
                        p.grad = None
                for p, s in zip(params, sums):
                    p.grad = (s + torch.randn_like(p)) / a.batch
                opt.step()
                opt.zero_grad()

            t_op = timed(opacus_step, dev, a.repeats)
            gsm.remove_hooks()
        row = dict(
            kind='dp_step',
            **stamp(dev),
            preset=a.preset,
            parameters=count_params(model),
            image_size=a.image_size,
            repeats=a.repeats,
            K=K,
            B=a.batch,
            rows=a.batch * K,
            np_ex_s=a.batch / t_np,
            dp_ex_s=a.batch / t_dp,
            op_ex_s=a.batch / t_op,
            dp_ratio=t_dp / t_np,
            op_ratio=t_op / t_np,
        )
        rows.append((row_key('dp_step', dev, f'{a.preset}-B{a.batch}-K{K}'), row))
        print(
            f"K={K:2d}  B={a.batch}  rows={a.batch * K:4d}  non-private {row['np_ex_s']:7.1f} ex/s | dp_synth {row['dp_ex_s']:7.1f} ex/s "
            f"({row['dp_ratio']:.2f}x) | opacus hooks {row['op_ex_s']:7.1f} ex/s ({row['op_ratio']:.2f}x)",
            flush=True,
        )
    if a.no_write:
        return
    save_rows(dict(rows), SPEED_JSON)
    body = (
        f"`{command()}`, UNet preset `{a.preset}` ({count_params(model) / 1e6:.2f}M parameters), {a.image_size}×{a.image_size}, "
        f"median of {a.repeats} steps after a warm-up. Ratios are time per step relative to the non-private step "
        f"on the same B·K rows.\n\n| K | B | rows B·K | non-private ex/s | dp_synth ex/s | dp_synth / non-private | "
        f"Opacus hooks ex/s | Opacus / non-private |\n|---|---|---|---|---|---|---|---|\n"
        + ''.join(
            f"| {r['K']} | {r['B']} | {r['rows']} | {{{{speed:{k} np_ex_s .1f}}}} | {{{{speed:{k} dp_ex_s .1f}}}} | "
            f"{{{{speed:{k} dp_ratio .2f}}}}× | {{{{speed:{k} op_ex_s .1f}}}} | {{{{speed:{k} op_ratio .2f}}}}× |\n"
            for k, r in rows
        )
    )
    append_section('DP step throughput', dev, body)


if __name__ == '__main__':
    main()
