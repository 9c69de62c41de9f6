"""The playground's declarative control table (pfml_core/playground/url_state.py)."""
import math

import numpy as np
import pytest

from pfml_core.playground import PRESETS
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


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_in_the_url_stands_for_its_values(preset):
    """?pg_preset=X alone gives X's starting values; the URL only spells out the rest."""
    values, _, notices = state.parse({"pg_preset": preset})
    assert notices == [] and values["preset"] == preset
    for name, want in PRESETS[preset].start().items():
        assert values[name] == want
    assert state.to_query(values) == ({} if preset == state.DEFAULT_PRESET else {"pg_preset": preset})
    changed = dict(values, seed=3, noise=0.0 if values["noise"] else 0.2)
    if "noise" in PRESETS[preset].fixed:
        changed["noise"] = values["noise"]
    assert state.parse(state.to_query(changed))[0] == changed


def test_label_noise_preset_flips_labels_and_two_classes_has_two():
    noisy = build_scene(state.scene_config(state.parse({"pg_preset": "label_noise"})[0]))
    assert noisy.flipped.sum() == round(0.1 * 60)  # 3 classes x 20 points, 10% flipped
    two = state.parse({"pg_preset": "two_classes"})[0]
    assert two["classes"] == 2 and build_scene(state.scene_config(two)).num_classes == 2


def test_a_value_the_preset_fixes_falls_back_with_a_notice():
    values, _, notices = state.parse({"pg_preset": "two_classes", "pg_classes": "4"})
    assert values["classes"] == 2
    assert len(notices) == 1 and "always has classes = 2" in notices[0] and "`4`" in notices[0]


def test_field_class_beyond_the_classes_falls_back_with_a_notice():
    values, _, notices = state.parse({"pg_preset": "label_noise", "pg_field_class": "4"})
    assert values["field_class"] == 2 and len(notices) == 1 and "field_class 4" in notices[0]


@pytest.mark.parametrize("key,raw", [("pg_alpha", "99"), ("pg_alpha", "abc"), ("pg_alpha", "nan"),
                                     ("pg_classes", "2.5"), ("pg_preset", "moon"),
                                     ("pg_compare", "yes"), ("pg_noise", "-0.1"), ("pg_seed", "")])
def test_bad_values_fall_back_to_default_with_a_notice(key, raw):
    values, _, notices = state.parse({key: raw, "pg_delta": "0.5"})
    name = key[len(state.PREFIX):]
    assert values[name] == state.BY_NAME[name].default
    assert values["delta"] == 0.5  # good values next to bad ones survive
    assert len(notices) == 1 and name in notices[0]


@pytest.mark.parametrize("raw", ["[Click here](https://evil.example)", "<b>x</b> `code` **bold**",
                                 "https://evil.example/" + "a" * 200, "line\nbreak"])
def test_notices_quote_url_text_as_an_inert_code_span(raw):
    """Whatever the URL holds is shown inside one code span: no link, no formatting."""
    _, _, notices = state.parse({"pg_preset": raw, "pg_hide": raw})
    assert len(notices) == 2
    for notice in notices:
        quoted = notice.split("`")
        assert len(quoted) == 3  # exactly one code span: the URL's backticks were replaced
        assert "\n" not in notice and len(quoted[1]) <= 63
        assert "](" not in quoted[0] + quoted[2] and "http" not in quoted[0] + quoted[2]


def test_hide_ignores_unknown_names_with_a_notice():
    _, hidden, notices = state.parse({"pg_hide": "alpha,bogus,delta"})
    assert hidden == ["alpha", "delta"] and "bogus" in notices[0]


def test_list_values_take_the_last_like_streamlit_with_a_notice():
    values, _, notices = state.parse({"pg_alpha": ["2.0", "5.0"], "pg_delta": ["0.2"]})
    assert values["alpha"] == 5.0 and values["delta"] == 0.2
    assert notices == ["URL key pg_alpha is given 2 times; using the last, `5.0`."]


def test_repulsion_margin_is_delta_unless_set_apart():
    assert state.dynamics(state.defaults()).delta_rep is None  # the paper's setting: = delta
    assert state.dynamics(dict(state.defaults(), delta_rep=0.4)).delta_rep is None  # not apart
    assert state.dynamics(dict(state.defaults(), separate_rep=True, delta_rep=0.4)).delta_rep == 0.4


def test_every_control_has_a_label_in_words():
    for c in state.CONTROLS:
        assert c.label and "_" not in c.label.replace("delta_rep", ""), c.name
    assert state.BY_NAME["step_size"].fmt == "%.4f"  # the default 0.002 is shown, not 0.00


def test_table_defaults_are_inside_their_ranges():
    for c in state.CONTROLS:
        if c.kind in ("int", "float"):
            assert c.low <= c.default <= c.high and math.isfinite(c.default)
        if c.kind == "choice":
            assert c.default in c.choices
