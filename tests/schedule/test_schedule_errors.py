"""Bad stages, weights and positions raise ScheduleError saying what to do."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.errors import ClimbstreamError, ScheduleError
from climbstream.schedule.schedule import Schedule, Stage
from schedule_helpers import to_weights

GOOD = to_weights([1, 2, 3])


def fresh() -> Schedule:
    return Schedule(3, 128, seed=0)


@pytest.mark.parametrize(
    "weights, message",
    [
        (to_weights([1, 1]), "2 weights for 3 languages; give one weight per language"),
        (np.array([2**31, 2**31, 1], dtype=np.uint64), "sum to 4294967297, not 2**32"),
        (np.array([2**32 + 1, -1, 0], dtype=np.int64), "weight of language 1 is -1; weights must be >= 0"),
        (np.array([0.5, 0.25, 0.25]), "dtype float64; they must be integers summing to 2**32"),
        (np.zeros((3, 1), dtype=np.uint64), "non-empty 1-D array"),
    ],
)
def test_bad_weights_are_rejected_with_what_to_do(weights, message):
    with pytest.raises(ScheduleError, match="stage .*at 0") as info:
        fresh().add_stage(0, weights)
    assert message in str(info.value)


def test_stage_start_not_a_block_multiple_names_the_next_boundary():
    schedule = fresh()
    schedule.add_stage(0, GOOD)
    with pytest.raises(ScheduleError, match=r"stage 1 at 300: start is not a multiple of the block size 128; start it at 384"):
        schedule.add_stage(300, GOOD)


def test_stage_must_start_after_the_last_one():
    schedule = fresh()
    schedule.add_stage(0, GOOD)
    schedule.add_stage(256, GOOD)
    with pytest.raises(ScheduleError, match=r"stage 2 at 256: must start after the last stage \(at 256\)"):
        schedule.add_stage(256, GOOD)
    assert [s.start for s in schedule.stages] == [0, 256]


def test_first_stage_must_start_at_zero():
    with pytest.raises(ScheduleError, match="stage 0 at 128: the first stage must start at position 0"):
        fresh().add_stage(128, GOOD)


def test_lookups_without_stages_say_to_add_one():
    with pytest.raises(ScheduleError, match=r"no stages; call add_stage\(0, weights\) first"):
        fresh().lookup(0)


def test_bad_positions_and_constructor_arguments():
    schedule = fresh()
    schedule.add_stage(0, GOOD)
    with pytest.raises(ScheduleError, match="position -1: must be in"):
        schedule.lookup(-1)
    with pytest.raises(ScheduleError, match="stop is before start"):
        schedule.lookup_range(10, 5)
    with pytest.raises(ScheduleError, match="block_size 0: must be an integer"):
        Schedule(3, 0, seed=0)
    with pytest.raises(ScheduleError, match="num_languages 0"):
        Schedule(0, 8, seed=0)
    assert issubclass(ScheduleError, ClimbstreamError)


def test_stages_compare_by_start_and_weights():
    assert Stage(0, GOOD) == Stage(0, GOOD.copy())
    assert Stage(0, GOOD) != Stage(128, GOOD)
    assert len({Stage(0, GOOD), Stage(0, GOOD.copy())}) == 1
    with pytest.raises(ValueError):
        Stage(0, GOOD).weights[0] = 5
