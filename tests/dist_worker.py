"""One DP-SGD run of a tiny diffusion UNet, for tests/test_distributed.py.

Run in a single process it computes the reference; run under torchrun (gloo, several processes) each process takes
its share of every logical batch and rank 0 saves what it ends with. The test compares the two.

    python tests/dist_worker.py OUT.pt                                  # single process
    python -m torch.distributed.run --nproc_per_node=2 tests/dist_worker.py OUT.pt
"""

import sys

import torch


def run(out: str, distributed: bool, steps: int = 2):
    from dp_synth.dist import broadcast_parameters, shard, world_info
    from dp_synth.dpsgd import DPSGD, poisson_sample
    from dp_synth.objective import DiffusionObjective, diffusion_loss_fn, timestep_sampler
    from dp_synth.schedule import NoiseSchedule
    from dp_synth.unet import UNet, unet_config

    torch.set_num_threads(1)
    rank, world = world_info()
    torch.manual_seed(100 + rank)  # deliberately different initial weights on each process...
    model = UNet(unet_config('tiny', image_size=16, n_classes=3))
    broadcast_parameters(model)  # ...which broadcast_parameters must align
    g = torch.Generator().manual_seed(0)  # the private data: identical on every process
    data, labels = torch.rand(40, 1, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (40,), generator=g)
    schedule = NoiseSchedule(100, 'linear')
    objective = DiffusionObjective(
        schedule, 2, timestep_sampler('uniform', 100), False, 0.1, null_class=model.null_class
    )
    q = 0.25
    dp = DPSGD(
        model,
        torch.optim.SGD(model.parameters(), lr=0.5),
        noise_multiplier=1.1,
        max_grad_norm=0.3,
        sample_rate=q,
        dataset_size=len(data),
        micro_batch_size=3,
        distributed=distributed,
    )
    stats = []
    for step in range(steps):
        idx = poisson_sample(len(data), q, torch.Generator().manual_seed(1000 + step))  # the same draw everywhere
        x0, y = data[idx], labels[idx]
        d = objective.draw(x0, torch.Generator().manual_seed(2000 + step))
        batch = (x0, y, d.t, d.noise, d.flip, d.drop)
        stats.append(
            dp.step(
                diffusion_loss_fn(objective),
                shard(batch) if distributed else batch,
                torch.Generator().manual_seed(3000 + step),
            )
        )
    if rank == 0:
        torch.save(
            dict(params={k: v.detach().clone() for k, v in model.named_parameters()}, stats=stats, world=world), out
        )


def resume(base: str, steps: int):
    """`finetune` where each process has its own run directory (as on machines without a shared disk): only rank 0's
    holds the checkpoint of the earlier invocation. Every process must continue from rank 0's state."""
    import os
    from dp_synth.finetune import FinetuneConfig, finetune

    torch.set_num_threads(1)
    cfg = FinetuneConfig(
        model='scratch:tiny',
        dataset='digits',
        epsilon=5.0,
        delta=1e-4,
        steps=steps,
        batch_size=32,
        K=1,
        noise_multiplier=2.0,
        micro_batch_size=8,
        device='cpu',
    )
    res = finetune(cfg, os.path.join(base, f"rank{os.environ.get('RANK', '0')}"), progress=False)
    print('RESULT', res.statement.dpsgd_steps, res.finished, flush=True)  # (DP-SGD's steps)


if __name__ == '__main__':
    import os

    if int(os.environ.get('WORLD_SIZE', '1')) > 1:
        import torch.distributed as dist

        dist.init_process_group('gloo')
        try:
            if sys.argv[1] == 'resume':
                resume(sys.argv[2], int(sys.argv[3]))
            else:
                run(sys.argv[1], distributed=True)
        finally:
            dist.destroy_process_group()
    elif sys.argv[1] == 'resume':
        resume(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[1], distributed=False)
