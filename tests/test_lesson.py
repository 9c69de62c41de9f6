"""The guided lesson: pfml_core/playground/lesson.py (each scene shows what its sentences
claim) and pages/lesson.py (one URL per scene, Back / Next, the playground link)."""
import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pfml_core.playground import build_scene, descent, lesson
from pfml_core.playground import url_state as state

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "lesson.py")


def _app(query=None):
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _run(i: int, potential: str = "pfml"):
    values = lesson.SCENES[i].playground_values()
    scene = build_scene(state.scene_config(values))
    return scene, descent.simulate(scene, state.dynamics(values, potential), int(values["steps"]))


@pytest.mark.parametrize("i", range(len(lesson.SCENES)))
def test_every_scene_is_a_valid_playground_state_with_two_or_three_sentences(i):
    s = lesson.SCENES[i]
    values = s.playground_values()
    assert state.parse(state.to_query(values))[0] == values  # survives the playground's URL
    build_scene(state.scene_config(values))
    assert 2 <= len(re.findall(r"[.!?](?:\s|$)", s.text)) <= 3, s.text


def test_scene_2_pfml_keeps_a_cloud_while_contrastive_collapses():
    scene, pfml = _run(1)
    _, contrastive = _run(1, "contrastive")
    spread = lambda f: np.mean([f.points[scene.labels == c].std(0).mean() for c in (0, 1)])  # noqa: E731
    assert spread(pfml[-1]) > 0.5 * spread(pfml[0])
    assert spread(contrastive[-1]) < 0.05 * spread(contrastive[0])


def test_scene_3_touching_classes_open_a_margin_then_stop():
    scene, frames = _run(2)
    delta = lesson.SCENES[2].playground_values()["delta"]

    def gap(f):
        d = np.linalg.norm(f.points[:, None] - f.points[None], axis=-1)
        return d[scene.labels[:, None] != scene.labels[None]].min()
    assert gap(frames[0]) < delta < gap(frames[-1])
    assert np.abs(frames[-1].points - frames[-2].points).max() < 1e-3  # nothing pushes any more


def test_scene_4_pfml_leaves_far_mislabeled_samples_alone():
    scene, pfml = _run(3)
    _, contrastive = _run(3, "contrastive")
    moved = lambda fr: np.linalg.norm(fr[-1].points - fr[0].points, axis=1)[scene.flipped]  # noqa: E731
    assert moved(pfml).mean() < 0.3 * moved(contrastive).mean()


def test_scene_5_pfml_proxies_land_on_the_data_contrastive_ones_between_it():
    scene, pfml = _run(4)
    _, contrastive = _run(4, "contrastive")
    assert np.array_equal(pfml[-1].points, scene.points)  # samples held still

    def to_data(f):  # each proxy's distance to the nearest sample of its class
        return np.array([np.linalg.norm(scene.points[scene.labels == c] - p, axis=1).min()
                         for p, c in zip(f.proxies, scene.proxy_labels)])
    assert to_data(pfml[-1]).max() < 0.5 < to_data(contrastive[-1]).min()


def test_a_scene_url_round_trips_with_back_and_next():
    at = _app({"scene": "3"})
    assert not at.exception and not at.warning
    assert at.subheader[0].value == "Scene 3 of 5: The repulsion margin"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not [t for t in spec["data"] if t.get("name") == "proxies" and t["x"]["bdata"]]  # M = 0 here
    assert len(spec["frames"]) == 61
    at.button(key="lesson_next").click().run()
    assert at.query_params["scene"] == "4" and at.subheader[0].value.startswith("Scene 4 of 5")
    assert at.dataframe[0].value["sample"].tolist() == list(np.flatnonzero(
        build_scene(state.scene_config(lesson.SCENES[3].playground_values())).flipped))
    at.button(key="lesson_back").click().run()
    at.button(key="lesson_back").click().run()
    assert at.query_params["scene"] == "2" and at.subheader[0].value.startswith("Scene 2 of 5")


def test_first_and_last_scene_disable_the_way_out():
    first = _app()
    assert first.query_params["scene"] == "1" and first.button(key="lesson_back").disabled
    last = _app({"scene": "5"})
    assert last.button(key="lesson_next").disabled and not last.button(key="lesson_back").disabled


def test_the_playground_link_reproduces_the_scene():
    at = _app({"scene": "5"})
    link = next(m.value for m in at.markdown if "Open this scene in the playground" in m.value)
    query = dict(parse_qsl(re.search(r"\(playground\?([^)]*)\)", link).group(1)))
    assert state.parse(query)[0] == lesson.SCENES[4].playground_values()


@pytest.mark.parametrize("raw", ["9", "0", "two", "[Click here](https://evil.example)"])
def test_a_bad_scene_falls_back_to_the_first_with_an_inert_notice(raw):
    at = _app({"scene": raw})
    assert not at.exception and at.subheader[0].value.startswith("Scene 1 of 5")
    notice = at.warning[0].value
    assert "URL value ignored" in notice and f"`{raw}`" in notice
    assert "](" not in notice.replace(f"`{raw}`", "")
    assert at.query_params["scene"] == "1"
