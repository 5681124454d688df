"""Distributions: the written forms, bounds from the field, whole numbers for integer fields, and
draws fixed by the seed."""

import random

import pytest
from pydantic import ValidationError

from loadgen.scenario.dists import Choice, Constant, Exponential, LogNormal, Normal, Uniform, dist_field
from loadgen.scenario.spec import Spec


class Fields(Spec):
    count: dist_field(lo=1, hi=100, integer=True) = 1
    wait: dist_field(lo=0, hi=60, duration=True) = 0


def count(written):
    return Fields.model_validate({"count": written}).count


def wait(written):
    return Fields.model_validate({"wait": written}).wait


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        (3, Constant),
        ({"min": 2, "max": 6}, Uniform),
        ({"mean": 10, "sd": 3}, Normal),
        ({"mean": 10, "sd": 3, "min": 5, "max": 20}, Normal),
        ({"dist": "lognormal", "median": 8, "sigma": 0.5}, LogNormal),
        ({"dist": "exponential", "mean": 4}, Exponential),
        ({"choice": [1, 2, 3]}, Choice),
        ({"dist": "uniform", "min": 1, "max": 2}, Uniform),
    ],
)
def test_written_forms(written, kind):
    assert type(count(written)) is kind


def test_open_ended_distributions_take_the_fields_bounds():
    normal = count({"mean": 10, "sd": 3})
    assert (normal.min, normal.max) == (1, 100)
    assert wait({"dist": "exponential", "mean": 2, "max": 10}).min == 0


def test_time_distributions_accept_durations():
    assert wait({"min": "500ms", "max": "2s"}) == Uniform(min=0.5, max=2.0)
    assert wait("1m").value == 60.0
    assert wait({"choice": ["1s", 2]}).choice == (1.0, 2.0)


@pytest.mark.parametrize(
    "written",
    [
        0,  # below the field's lower bound
        101,  # above its upper bound
        2.5,  # an integer field
        {"min": 5, "max": 2},
        {"mean": 3},  # neither normal (no sd) nor exponential (no dist:)
        {"mean": 3, "sd": -1},
        {"dist": "lognormal", "median": 0, "sigma": 1},
        {"choice": []},
        {"choice": [1, 200]},
        {"dist": "uniform", "min": 1, "max": 2, "sd": 1},  # sd belongs to normal
        [1, 2],
        "often",
    ],
)
def test_refused(written):
    with pytest.raises(ValidationError):
        count(written)


DRAWN = [
    3,
    {"min": 2, "max": 6},
    {"mean": 10, "sd": 30},
    {"dist": "lognormal", "median": 8, "sigma": 2},
    {"dist": "exponential", "mean": 40},
    {"choice": [1, 5, 100]},
]


@pytest.mark.parametrize("written", DRAWN)
def test_integer_samples_are_whole_numbers_within_bounds(written):
    dist, rng = count(written), random.Random(1)
    samples = [dist.sample(rng) for _ in range(2000)]
    assert all(type(sample) is int and 1 <= sample <= 100 for sample in samples)


@pytest.mark.parametrize("written", [{"mean": 1, "sd": 5}, {"dist": "exponential", "mean": 30}, {"min": 0, "max": 60}])
def test_time_samples_are_within_bounds(written):
    dist, rng = wait(written), random.Random(2)
    samples = [dist.sample(rng) for _ in range(2000)]
    assert all(isinstance(sample, float) and 0 <= sample <= 60 for sample in samples)


def test_uniform_integers_cover_both_ends():
    dist, rng = count({"min": 2, "max": 6}), random.Random(3)
    assert {dist.sample(rng) for _ in range(500)} == {2, 3, 4, 5, 6}


@pytest.mark.parametrize("written", DRAWN)
def test_the_seed_fixes_every_draw(written):
    dist = count(written)
    first, second = random.Random(42), random.Random(42)
    assert [dist.sample(first) for _ in range(50)] == [dist.sample(second) for _ in range(50)]


def test_different_seeds_draw_differently():
    dist = count({"min": 1, "max": 100})
    assert [dist.sample(random.Random(1)) for _ in range(5)] != [dist.sample(random.Random(2)) for _ in range(5)]


def test_normal_mean_is_respected():
    # mean 50, sd 5 within [1, 100]: clipping never bites, so the sample mean is close to 50
    dist, rng = count({"mean": 50, "sd": 5}), random.Random(4)
    samples = [dist.sample(rng) for _ in range(4000)]
    assert sum(samples) / len(samples) == pytest.approx(50, abs=0.5)
