"""DP-MERF (Harder, Adamczewski and Park, AISTATS 2021), written from the paper: a peer for dp_synth's CPU rows.

The private data is touched once: the mean embedding of (image, label) pairs under random Fourier features,
    μ = (1/N) Σ_i φ(x_i) ⊗ e_{y_i},   φ(x) = √(2/D) [cos(Wx), sin(Wx)] / √2 ⊕ 1/√2,   W ~ N(0, ℓ⁻² I),
is released once with the Gaussian mechanism. ‖φ(x) ⊗ e_y‖ = 1 for every example, so one example moves the sum
by at most 1 (add/remove, as dp_synth's ledger): with N declared public, the mean's sensitivity is 1/N and the
release is μ + N(0, (σ/N)²). Its RDP is α/2σ², one entry [σ, 1, 1] in a `PrivacyLedger`; σ is calibrated to the
target (ε, δ) by the same `calibrate_sigma` as dp_synth's runs. The constant coordinate 1/√2 carries the class
proportions (noisy), from which the generator's labels are drawn.

A conditional generator G(z, y) is then trained, with no further access to the data, to match the released
embedding: min ‖μ̃ − (1/b) Σ_j φ(G(z_j, y_j)) ⊗ e_{y_j}‖². Everything after the release is post-processing.

Choices not in the paper, and why: the kernel length ℓ = 9.1 is the median pairwise distance of 2,000 public font
glyphs (`load_dataset('glyphs')`, 784 pixels in [0, 1]; the median heuristic on public data, so it costs no ε); the
generator is the paper's small convolutional conditional generator (code 5, two hidden layers, two up-convolutions).
The synthetic images are judged by dp_synth's own `evaluate`, as every row of the study.

usage: python benchmarks/peers/dp_merf.py --epsilon 10 --seed 0 [--steps 2000] --out dp_merf.npz
       (the study runs it beside dp_synth's rows: python benchmarks/experiments/study.py --groups peers)
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import time

import numpy as np
import torch
from torch import nn

from dp_synth.accounting import PrivacyLedger, calibrate_sigma
from dp_synth.data import ImageDataset, load_dataset

KERNEL_LENGTH = 9.1  # median pairwise distance of 2,000 public glyphs in [0, 1]^784 (see the docstring)


def rff_weights(d: int, n_features: int, length: float, seed: int) -> torch.Tensor:
    "W ~ N(0, ℓ⁻²) of shape [D/2, d] (public: a seed, not the data)."
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_features // 2, d, generator=g) / length


def features(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    "φ(x) for x [n, d] in [0, 1]: [n, D + 1], each row of L2 norm exactly 1."
    wx = x @ W.T
    half = math.sqrt(1.0 / W.shape[0]) / math.sqrt(2)  # √(2/D)/√2 with D = 2·rows
    const = torch.full((len(x), 1), 1 / math.sqrt(2), dtype=x.dtype)
    return torch.cat([wx.cos() * half, wx.sin() * half, const], 1)


def embedding_sum(images: torch.Tensor, labels: torch.Tensor, n_classes: int, W: torch.Tensor, chunk: int = 2000):
    "Σ_i φ(x_i) ⊗ e_{y_i}: [D + 1, classes] (float64); each example adds a unit-norm matrix."
    total = torch.zeros(2 * W.shape[0] + 1, n_classes, dtype=torch.float64)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].flatten(1).float() / 255
        f = features(x, W).double()
        total += f.T @ nn.functional.one_hot(labels[i : i + chunk].long(), n_classes).double()
    return total


def release(private: ImageDataset, W: torch.Tensor, epsilon: float, delta: float, generator: np.random.Generator):
    "The one private release: the noisy mean embedding, with its ledger. Returns (μ̃ [D+1, C], ledger, σ)."
    n, C = len(private), len(private.classes)
    sigma = calibrate_sigma(epsilon, delta, 1.0, 1)  # one Gaussian mechanism, no subsampling
    mu = embedding_sum(private.images, private.labels, C, W).numpy() / n  # N declared public
    noisy = mu + (sigma / n) * generator.standard_normal(mu.shape)
    ledger = PrivacyLedger().record(sigma, 1.0, 1)
    return torch.from_numpy(noisy).float(), ledger, sigma


class ConvCondGen(nn.Module):
    "DP-MERF's conditional generator for 28×28 images: (z, one-hot y) → two dense layers → two up-convolutions."

    def __init__(self, n_classes: int = 10, code: int = 5, hidden=(200, 500), ch=(16, 8)):
        super().__init__()
        self.code, self.n_classes, self.ch = code, n_classes, ch
        self.fc = nn.Sequential(nn.Linear(code + n_classes, hidden[0]), nn.BatchNorm1d(hidden[0]), nn.ReLU(),
                                nn.Linear(hidden[0], hidden[1]), nn.BatchNorm1d(hidden[1]), nn.ReLU(),
                                nn.Linear(hidden[1], 7 * 7 * ch[0]), nn.ReLU())  # fmt: skip
        self.conv = nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear'), nn.Conv2d(ch[0], ch[1], 5, padding=2),
                                  nn.ReLU(), nn.Upsample(scale_factor=2, mode='bilinear'), nn.Conv2d(ch[1], 1, 5, padding=2),
                                  nn.Sigmoid())  # fmt: skip

    def forward(self, z, y):
        h = self.fc(torch.cat([z, nn.functional.one_hot(y, self.n_classes).float()], 1))
        return self.conv(h.view(-1, self.ch[0], 7, 7))


def class_proportions(noisy: torch.Tensor) -> torch.Tensor:
    "The label distribution carried by the constant feature (noisy; clipped at 0 and renormalised)."
    p = (noisy[-1] * math.sqrt(2)).clamp_min(0)
    return p / p.sum() if p.sum() > 0 else torch.full_like(p, 1 / len(p))


def train_generator(noisy, W, n_classes, steps=2000, batch=500, lr=1e-2, seed=0, progress=False) -> ConvCondGen:
    "Fit G to the released embedding (post-processing: public seed, no data)."
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    G, p = ConvCondGen(n_classes), class_proportions(noisy)
    opt = torch.optim.Adam(G.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, steps // 4), gamma=0.5)
    for _ in tqdm(range(steps), desc='DP-MERF generator', disable=not progress):
        y = torch.multinomial(p, batch, replacement=True)
        x = G(torch.randn(batch, G.code), y).flatten(1)
        emb = features(x, W).T @ nn.functional.one_hot(y, n_classes).float() / batch
        loss = (emb - noisy).pow(2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return G.eval()


@torch.no_grad()
def synthesize(G: ConvCondGen, n: int, classes: list, seed: int = 0) -> ImageDataset:
    "n class-balanced images from G (uint8), as an `ImageDataset` that dp_synth's `evaluate` takes."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % len(classes)
    x = G(torch.randn(n, G.code, generator=g), y)
    return ImageDataset((x * 255).round().to(torch.uint8), y, list(classes), name='dp-merf', split='synthetic',
                        source='benchmarks/peers/dp_merf.py')  # fmt: skip


def run(dataset='mnist', epsilon=10.0, delta=1e-5, seed=0, steps=2000, n_features=10000, progress=False):
    "The whole peer: release, train, synthesise. Returns (synthetic ImageDataset, info dict)."
    t0 = time.time()
    private = load_dataset(dataset, 'train')
    if tuple(private.images.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"this DP-MERF generator makes 1×28×28 images; {dataset} has {tuple(private.images.shape[1:])}"
        )
    W = rff_weights(28 * 28, n_features, KERNEL_LENGTH, seed)
    noisy, ledger, sigma = release(private, W, epsilon, delta, np.random.default_rng(secrets.randbits(128)))
    G = train_generator(noisy, W, len(private.classes), steps=steps, seed=seed, progress=progress)
    info = dict(epsilon=ledger.epsilon(delta), delta=delta, sigma=sigma, ledger=ledger.entries, steps=steps,
                n_features=n_features, kernel_length=KERNEL_LENGTH, train_seconds=round(time.time() - t0, 1))  # fmt: skip
    return G, private.classes, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--dataset', default='mnist')
    ap.add_argument('--epsilon', type=float, default=10.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--n', type=int, default=1000, help='synthetic images to write')
    ap.add_argument('--out', default='dp_merf.npz', help='where the synthetic images go (images, labels, classes)')
    a = ap.parse_args()
    G, classes, info = run(a.dataset, a.epsilon, seed=a.seed, steps=a.steps, progress=True)
    ds = synthesize(G, a.n, classes, a.seed)
    np.savez_compressed(a.out, images=ds.images.numpy(), labels=ds.labels.numpy(), classes=np.array(classes))
    print(json.dumps(dict(info, out=a.out)))


if __name__ == '__main__':
    main()
