"""Privacy properties, checked independently of the notebooks: calibration as the inverse of accounting, the clipping
bound and noise scale of the DP step on the real UNet, Poisson sampling, and the refusal to overspend. The accountant's
cross-check against Opacus and dp-accounting (150 random settings, σ down to 0.3) is nbs/06_accounting.ipynb's own
check, which tests/test_notebooks.py runs."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dp_synth.accounting import PrivacyLedger, calibrate_sigma, epsilon_for
from dp_synth.dpsgd import DPSGD, clip_and_sum, per_sample_grads, poisson_sample
from dp_synth.objective import DiffusionObjective, diffusion_loss_fn
from dp_synth.schedule import NoiseSchedule
from dp_synth.unet import UNet, unet_config


@pytest.mark.parametrize('eps,q,steps', [(0.5, 0.001, 1000), (1.0, 0.004, 2344), (10.0, 0.01, 500), (3.0, 0.1, 50)])
def test_calibration_inverts_accounting(eps, q, steps):
    s = calibrate_sigma(eps, 1e-5, q, steps)
    assert epsilon_for(s, q, steps, 1e-5) <= eps < epsilon_for(s * (1 - 2e-4), q, steps, 1e-5)


def test_ledger_composition_is_additive():
    a = PrivacyLedger().record(1.0, 0.01, 300).record(2.0, 0.05, 200)
    b = PrivacyLedger().record(2.0, 0.05, 200).record(1.0, 0.01, 300)
    assert a.epsilon(1e-5) == pytest.approx(b.epsilon(1e-5), rel=1e-12)
    assert a.epsilon(1e-5) > max(epsilon_for(1.0, 0.01, 300, 1e-5), epsilon_for(2.0, 0.05, 200, 1e-5))


@pytest.mark.parametrize('seed', range(3))
def test_unet_clipped_contributions_bounded(seed):
    "σ = 0: every example's clipped gradient on the small UNet has norm ≤ C(1+1e-6), from far above and far below C."
    torch.manual_seed(seed)
    net = UNet(unet_config('tiny', image_size=8))
    for p in net.out.parameters():
        torch.nn.init.normal_(p, std=0.05)
    obj = DiffusionObjective(NoiseSchedule(), K=2, null_class=net.null_class)
    x0, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    d = obj.draw(x0, torch.Generator().manual_seed(seed))
    scale = torch.logspace(-4, 4, 6)

    def loss(f, x0, y, t, n, fl, dr, s):
        return diffusion_loss_fn(obj)(f, x0, y, t, n, fl, dr) * s

    G = per_sample_grads(net, loss, (x0, y, d.t, d.noise, d.flip, d.drop, scale))
    C = 1e-2
    _, norms, factors = clip_and_sum(G, C)
    assert norms.max() > 100 * C and norms.min() < C / 100
    for i in range(6):
        assert math.sqrt(sum(float((factors[i] * G[k][i]).pow(2).sum()) for k in G)) <= C * (1 + 1e-6)


def test_noise_std_is_sigma_C_over_expected_batch():
    "Pure-noise gradient coordinates have std σC/(qN): a two-sided chi-square test at 99.9 %."
    net = torch.nn.Linear(500, 200)
    sigma, C, q, N = 0.8, 2.5, 0.02, 3000
    dp = DPSGD(net, torch.optim.SGD(net.parameters(), lr=0.1), sigma, C, q, N, micro_batch_size=7)
    noisy, _ = dp.noisy_gradient(
        lambda f, x: (f(x) * 0).sum(1), (torch.randn(40, 500),), torch.Generator().manual_seed(3)
    )
    z = torch.cat([v.flatten() for v in noisy.values()]).double() * (q * N) / (sigma * C)
    chi2 = (z.numel() - 1) * z.var().item()
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], z.numel() - 1)
    assert lo <= chi2 <= hi


def test_poisson_batch_sizes_are_binomial():
    g = torch.Generator().manual_seed(5)
    N, q = 2000, 0.05
    sizes = np.array([len(poisson_sample(N, q, g)) for _ in range(3000)])
    edges = np.unique(stats.binom.ppf(np.linspace(0, 1, 11)[1:-1], N, q)).astype(int)  # ~decile bins of Binomial(N, q)
    bounds = [-1, *edges, N]
    obs = [int(((sizes > lo) & (sizes <= hi)).sum()) for lo, hi in zip(bounds, bounds[1:])]
    exp = [sizes.size * (stats.binom.cdf(hi, N, q) - stats.binom.cdf(lo, N, q)) for lo, hi in zip(bounds, bounds[1:])]
    assert stats.chisquare(obs, exp).pvalue > 0.001
    assert abs(sizes.mean() - N * q) < 4 * math.sqrt(N * q * (1 - q) / sizes.size)


def test_bad_dp_parameters_are_refused():
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match='max_grad_norm'):
        DPSGD(net, torch.optim.SGD(net.parameters(), lr=1), 1.0, 0.0, 0.1, 10)
    with pytest.raises(ValueError, match='sample_rate'):
        DPSGD(net, torch.optim.SGD(net.parameters(), lr=1), 1.0, 1.0, 1.5, 10)
    with pytest.raises(ValueError, match='sample rate q'):
        poisson_sample(10, 0.0)
