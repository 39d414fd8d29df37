"""The settings of the devnet's market-activity driver (keeper/devnet/activity.py), on their own:
no chain code, so the command line reads their defaults for its help without importing the driver."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActivityConfig:
    seed: int = 7
    step_s: int = 60
    block_interval_s: int = 1  # every mined block advances the chain clock by exactly this
    index_vol_daily: float = 0.04
    jump_probability: float = 0.0
    jump_size: float = 0.05
    premium_vol_daily: float = 0.03
    premium_half_life_s: float = 3_600.0
    spot_noise: float = 0.0005
    one_block_per_step: bool = True  # all of a step's trades land in one block, as between real blocks
    shock_every_steps: int = 0  # 0: no scripted premium shocks
    shock_premium: float = 0.02
