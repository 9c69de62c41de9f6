"""The playground's declarative control table (pfml_core/state.py)."""
import math

import numpy as np
import pytest

from pfml_core.playground import url_state as state
from pfml_core.playground.scene import build_scene


def test_defaults_parse_from_an_empty_url_without_notices():
    values, hidden, notices = state.parse({})
    assert values == state.defaults() and hidden == [] and notices == []


def test_round_trip_restores_identical_values_and_scene():
    values = dict(state.defaults(), preset="label_noise", classes=4, noise=0.15, seed=42,
                  alpha=4.5, delta=0.25, step_size=0.0035, compare=True)
    query = state.to_query(values, hidden=["alpha", "seed"])
    assert query["pg_seed"] == "42" and query["pg_hide"] == "alpha,seed"
    back, hidden, notices = state.parse(query)
    assert back == values and hidden == ["alpha", "seed"] and notices == []
    a, b = build_scene(state.scene_config(values)), build_scene(state.scene_config(back))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.flipped, b.flipped)
    assert state.dynamics(back) == state.dynamics(values)


def test_all_values_serialisation_round_trips_every_control():
    q = state.to_query(state.defaults(), all_values=True)
    assert set(q) == {c.key for c in state.CONTROLS}
    assert state.parse(q)[0] == state.defaults()


@pytest.mark.parametrize("key,raw", [("pg_alpha", "99"), ("pg_alpha", "abc"), ("pg_alpha", "nan"),
                                     ("pg_classes", "2.5"), ("pg_preset", "moon"),
                                     ("pg_compare", "yes"), ("pg_noise", "-0.1"), ("pg_seed", "")])
def test_bad_values_fall_back_to_default_with_a_notice(key, raw):
    values, _, notices = state.parse({key: raw, "pg_delta": "0.5"})
    name = key[len(state.PREFIX):]
    assert values[name] == state.BY_NAME[name].default
    assert values["delta"] == 0.5  # good values next to bad ones survive
    assert len(notices) == 1 and name in notices[0]


def test_hide_ignores_unknown_names_with_a_notice():
    _, hidden, notices = state.parse({"pg_hide": "alpha,bogus,delta"})
    assert hidden == ["alpha", "delta"] and "bogus" in notices[0]


def test_list_values_take_the_last_like_streamlit():
    assert state.parse({"pg_alpha": ["2.0", "5.0"]})[0]["alpha"] == 5.0


def test_delta_rep_zero_means_same_as_delta():
    assert state.dynamics(state.defaults()).delta_rep is None
    assert state.dynamics(dict(state.defaults(), delta_rep=0.4)).delta_rep == 0.4


def test_table_defaults_are_inside_their_ranges():
    for c in state.CONTROLS:
        if c.kind in ("int", "float"):
            assert c.low <= c.default <= c.high and math.isfinite(c.default)
        if c.kind == "choice":
            assert c.default in c.choices
