"""Cyclic learning-rate schedules for snapshot ensembles and fast geometric ensembling."""

from __future__ import annotations

import math

import torch


def cycle_ends(total_steps: int, n_cycles: int, warmup_fraction: float = 0.0) -> list[int]:
    """Optimizer steps (1-based) after which each cycle ends; the last is ``total_steps``.

    ``warmup_fraction`` of the steps come first as one ordinary run; the rest are split into
    ``n_cycles`` cycles of ``ceil(rest / n_cycles)`` steps (the last may be shorter), as in
    Huang et al. (2017).

    Parameters
    ----------
    total_steps : int
        Optimizer steps of the whole run.
    n_cycles : int
        Number of cycles.
    warmup_fraction : float, default=0.0
        Share of the steps before the first cycle.

    Returns
    -------
    list of int
        ``n_cycles`` step numbers, increasing.

    Examples
    --------
    >>> cycle_ends(10, 3)
    [4, 8, 10]
    >>> cycle_ends(10, 2, warmup_fraction=0.2)
    [6, 10]
    """
    if total_steps < 1 or n_cycles < 1:
        raise ValueError(f"need total_steps >= 1 and n_cycles >= 1; got {total_steps}, {n_cycles}")
    warmup = int(round(warmup_fraction * total_steps))
    length = math.ceil((total_steps - warmup) / n_cycles)
    ends = sorted({min(warmup + length * (i + 1), total_steps) for i in range(n_cycles)})
    if len(ends) < n_cycles:
        raise ValueError(
            f"{total_steps} training steps ({warmup} of warm-up) hold only {len(ends)} cycles of "
            f"ceil({total_steps - warmup} / {n_cycles}) = {length} steps, not {n_cycles}; "
            "train for more steps or use fewer cycles"
        )
    return ends


class CyclicCosineSchedule:
    """Factory ``f(optimizer, total_steps)`` for a cyclic cosine schedule, stepped every batch.

    Without warm-up this is the snapshot-ensemble schedule of Huang et al. (2017),
    ``lr(t) = lr0 / 2 * (cos(pi * mod(t - 1, ceil(T / M)) / ceil(T / M)) + 1)``: M cycles, each
    annealing from the peak to zero. With ``warmup_fraction > 0`` it is fast geometric
    ensembling in the spirit of Garipov et al. (2018): one ordinary run whose learning rate
    moves on a half cosine from ``lr0`` to ``cycle_peak * lr0`` (down when ``cycle_peak < 1``,
    up when it is larger), then M short cycles from ``cycle_peak * lr0`` to zero.
    (Garipov et al. use triangular cycles; cosine cycles keep one code path with the snapshot
    schedule and anneal to the same minimum where snapshots are taken.)

    Parameters
    ----------
    n_cycles : int
        Number of cycles M (one snapshot at the end of each).
    warmup_fraction : float, default=0.0
        Share of the steps spent in the ordinary run before the cycles.
    cycle_peak : float, default=1.0
        Peak of each cycle as a multiple of the optimizer's learning rate.

    Examples
    --------
    >>> import torch
    >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> scheduler = CyclicCosineSchedule(n_cycles=2)(optimizer, total_steps=4)
    >>> lrs = []
    >>> for _ in range(4):
    ...     lrs.append(round(optimizer.param_groups[0]["lr"], 3))
    ...     optimizer.step(); scheduler.step()
    >>> lrs
    [1.0, 0.5, 1.0, 0.5]
    """

    def __init__(
        self, n_cycles: int, warmup_fraction: float = 0.0, cycle_peak: float = 1.0
    ) -> None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1); got {warmup_fraction}")
        if cycle_peak <= 0:
            raise ValueError(f"cycle_peak must be > 0; got {cycle_peak}")
        self.n_cycles = n_cycles
        self.warmup_fraction = warmup_fraction
        self.cycle_peak = cycle_peak

    def __repr__(self) -> str:
        return (
            f"CyclicCosineSchedule(n_cycles={self.n_cycles}, "
            f"warmup_fraction={self.warmup_fraction}, cycle_peak={self.cycle_peak})"
        )

    def __call__(
        self, optimizer: torch.optim.Optimizer, total_steps: int
    ) -> torch.optim.lr_scheduler.LambdaLR:
        ends = cycle_ends(total_steps, self.n_cycles, self.warmup_fraction)
        warmup = int(round(self.warmup_fraction * total_steps))
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, _Multiplier(warmup, [warmup, *ends], self.cycle_peak)
        )


class _Multiplier:
    """Learning-rate multiplier at step ``s`` (0-based); an object, so schedulers pickle."""

    def __init__(self, warmup: int, bounds: list[int], cycle_peak: float) -> None:
        self.warmup, self.bounds, self.cycle_peak = warmup, bounds, cycle_peak

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            progress = step / self.warmup
            return self.cycle_peak + (1 - self.cycle_peak) * 0.5 * (
                1 + math.cos(math.pi * progress)
            )
        for start, end in zip(self.bounds[:-1], self.bounds[1:], strict=True):
            if step < end:
                # every cycle has the full length ceil(rest / M), so the last, shorter one is
                # cut off before reaching zero exactly as in Huang et al.'s formula
                length = self.bounds[1] - self.bounds[0]
                return self.cycle_peak * 0.5 * (1 + math.cos(math.pi * (step - start) / length))
        return 0.0
