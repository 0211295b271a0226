from __future__ import annotations

import random

from workflows.prompt import validate_inputs

SPEC = {
    "spec_version": "1.0",
    "slug": "s",
    "name": "S",
    "version": "1.0.0",
    "inputs": [
        {"id": "seed", "label": "Seed", "type": "seed", "default": 42, "bind": [{"node": "1", "input": "seed"}]}
    ],
    "outputs": [{"node": "9", "type": "image"}],
}


def test_explicit_minus_one_is_random_even_when_the_default_is_fixed():
    seeds = {validate_inputs(SPEC, {"seed": -1}, rng=random.Random(i))["seed"] for i in range(5)}
    assert 42 not in seeds and len(seeds) == 5


def test_missing_seed_takes_the_fixed_default():
    assert validate_inputs(SPEC, {})["seed"] == 42
