"""Shared helpers for the tests: small explicit distributions and their exact oracles."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see seqdiff/__init__.py)

import pytest  # noqa: E402
import torch  # noqa: E402

from seqdiff.diffusion import ExactOracle, random_distribution  # noqa: E402

# One intra-op thread: the tensors here are small, and OpenMP threads stall badly whenever another
# process holds a core (timings swing by 10x or more on a 2-core machine).
torch.set_num_threads(1)


def make_oracle(process, schedule, length=3, seed=0, parameterization="x0", p0=None):
    """An exact oracle for a random full-support p0 over ``n^length`` clean sequences."""
    g = torch.Generator().manual_seed(seed)
    n = process.num_data_tokens
    if p0 is None:
        p0 = random_distribution(n ** length, g)
    return ExactOracle(p0, length, process, schedule, parameterization)


def state_index(x: torch.Tensor, n_states: int) -> torch.Tensor:
    """Lexicographic index of sequences over ``n_states`` symbols (matches all_sequences)."""
    L = x.shape[-1]
    w = n_states ** torch.arange(L - 1, -1, -1)
    return (x * w).sum(-1)


def tv_threshold(p: torch.Tensor, n: int, delta: float = 1e-6) -> float:
    """A bound that the TV between an n-sample empirical law and p exceeds with prob. < delta.

    E[TV] ≤ ½ Σ sqrt(p_k (1 - p_k) / n) (Jensen on each |count/n - p_k|), and TV is a function of
    n independent draws that changes by at most 1/n when one draw changes, so McDiarmid gives
    P(TV - E[TV] > ε) ≤ exp(-2 n ε²): ε = sqrt(log(1/δ) / (2n)).
    """
    p = p.double()
    mean_bound = 0.5 * float(torch.sqrt(p * (1 - p) / n).sum())
    dev = (torch.log(torch.tensor(1 / delta)) / (2 * n)).sqrt().item()
    return mean_bound + dev


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
