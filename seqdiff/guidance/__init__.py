"""Steering generation: reward-guided sampling with no training (best-of-N, SMC), classifier-free
guidance of conditional models, and the rewards they use."""

from .rewards import REWARDS, Reward, parse_reward, reward_names
from .smc import SMCResult, best_of_n, best_of_n_law, smc_sample, tilt_log_potential

__all__ = ["REWARDS", "Reward", "parse_reward", "reward_names", "SMCResult", "best_of_n", "best_of_n_law",
           "smc_sample", "tilt_log_potential"]
