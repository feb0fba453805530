import math

import pytest
import torch

from members import CyclicCosineSchedule, cycle_ends


def _multipliers(schedule, total_steps):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = schedule(optimizer, total_steps)
    values = []
    for _ in range(total_steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


@pytest.mark.parametrize("total, cycles", [(100, 5), (103, 5), (10, 3), (7, 7)])
def test_snapshot_schedule_is_huang_et_al_formula(total, cycles):
    length = math.ceil(total / cycles)
    expected = [
        0.5 * (math.cos(math.pi * ((t - 1) % length) / length) + 1) for t in range(1, total + 1)
    ]
    assert _multipliers(CyclicCosineSchedule(cycles), total) == pytest.approx(expected)


@pytest.mark.parametrize("peak", [0.2, 3.0])
def test_fge_warmup_then_short_cycles(peak):
    values = _multipliers(CyclicCosineSchedule(4, warmup_fraction=0.5, cycle_peak=peak), 80)
    warmup, cycles = values[:40], values[40:]
    assert warmup[0] == pytest.approx(1.0)
    # one ordinary run moving monotonically from the lr towards the cycles' peak
    steps = [b - a for a, b in zip(warmup, warmup[1:])]
    assert all(step * (peak - 1.0) >= 0 for step in steps)
    assert warmup[-1] == pytest.approx(peak, abs=0.01)
    assert cycles[0] == pytest.approx(peak) and cycles[10] == pytest.approx(peak)  # restarts
    assert max(cycles) == pytest.approx(peak) and min(cycles) < 0.05 * peak


def test_cycle_ends():
    assert cycle_ends(100, 5) == [20, 40, 60, 80, 100]
    assert cycle_ends(103, 5) == [21, 42, 63, 84, 103]
    assert cycle_ends(80, 4, warmup_fraction=0.5) == [50, 60, 70, 80]
    with pytest.raises(ValueError, match=r"hold only 1 cycles .* not 5"):
        cycle_ends(2, 5, warmup_fraction=0.5)
    with pytest.raises(ValueError, match=r"9 training steps \(0 of warm-up\) hold only 3 cycles"):
        cycle_ends(9, 4)  # ceil(9 / 4) = 3 steps a cycle leaves room for 3 cycles only


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"warmup_fraction": 1.0}, r"warmup_fraction must be in \[0, 1\); got 1.0"),
        ({"cycle_peak": 0.0}, r"cycle_peak must be > 0; got 0.0"),
    ],
)
def test_bad_schedule_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CyclicCosineSchedule(3, **kwargs)
