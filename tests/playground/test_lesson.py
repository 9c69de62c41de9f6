"""The guided lesson: pfml_core/playground/lesson.py (each scene shows what its sentences
claim) and pages/lesson.py (one URL per scene, Back / Next, the playground link)."""
import base64
import json
import re
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pytest
from pngs import read_png_uri
from streamlit.testing.v1 import AppTest

from pfml_core.playground import build_scene, descent, lesson
from pfml_core.playground import url_state as state

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "lesson.py")


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


def _drawn(i: int):
    """Scene i as the lesson page ships it: (scene, values, the chart's spec)."""
    values = lesson.SCENES[i].playground_values()
    at = _app({"scene": str(i + 1)})
    assert not at.exception
    return build_scene(state.scene_config(values)), values, json.loads(at.get("plotly_chart")[0].proto.spec)


def _at(spec, k: int, name: str, panel: int = 0) -> np.ndarray:
    """(m, 2) positions of the trace `name` of a panel at frame k, as the browser gets them."""
    axis = "x" + (str(panel + 1) if panel else "")
    i = next(j for j, t in enumerate(spec["data"]) if t.get("name") == name and t.get("xaxis") == axis)
    frame = spec["frames"][k]
    d = frame["data"][frame["traces"].index(i)]
    return np.c_[_arr(d["x"]), _arr(d["y"])]


def _arr(v) -> np.ndarray:
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).astype(float)
    return np.asarray(v, dtype=float)


def _arrow_lengths(spec, k: int) -> np.ndarray:
    path = _at(spec, k, "force").reshape(-1, 6, 2)  # tail, head, barb, head, barb, gap
    return np.linalg.norm(path[:, 1] - path[:, 0], axis=1)


def test_lesson_draws_every_scene_on_the_fixed_colour_scale():
    _, values, spec = _drawn(0)
    assert values["fixed_scale"] and "fixed scale" in spec["layout"]["coloraxis"]["colorbar"]["title"]["text"]


def test_scene_1_arrows_shrink_as_the_class_gathers_within_delta():
    scene, values, spec = _drawn(0)
    assert _arrow_lengths(spec, -1).max() < 0.5 * _arrow_lengths(spec, 0).max()
    own = _at(spec, -1, "samples")[scene.labels[~scene.flipped] == 0]
    first = _at(spec, 0, "samples")[scene.labels[~scene.flipped] == 0]
    spread = lambda p: np.linalg.norm(p - p.mean(0), axis=1).mean()  # noqa: E731
    assert spread(own) < spread(first)


def test_scene_2_pfml_keeps_a_cloud_while_contrastive_collapses():
    scene, _, spec = _drawn(1)
    spread = lambda p: np.mean([p[scene.labels == c].std(0).mean() for c in (0, 1)])  # noqa: E731
    pfml, contrastive = (lambda k: _at(spec, k, "samples", 0)), (lambda k: _at(spec, k, "samples", 1))
    assert spread(pfml(-1)) > 0.5 * spread(pfml(0))
    assert spread(contrastive(-1)) < 0.05 * spread(contrastive(0))


def test_scene_3_red_only_inside_the_discs_and_the_classes_end_outside_them():
    scene, values, spec = _drawn(2)
    delta, pts = values["delta"], _at(spec, -1, "samples")  # no label noise: every sample is clean
    rgb = read_png_uri(spec["frames"][-1]["layout"]["images"][0]["source"]).astype(int)  # row 0: lowest y
    x0, x1, y0, y1 = spec["layout"]["xaxis"]["range"] + spec["layout"]["yaxis"]["range"]
    xs, ys = descent.grid_axes((x0, x1, y0, y1), rgb.shape[1])
    gx, gy = np.meshgrid(xs, ys)
    others = pts[scene.labels != 0]
    near = np.linalg.norm(np.c_[gx.ravel(), gy.ravel()][:, None] - others[None], axis=-1).min(1)
    red = (rgb[..., 0] - rgb[..., 2] > 40).ravel()
    assert red.sum() > 20 and near[red].max() < delta  # red discs of radius delta, nothing red beyond
    gap = np.linalg.norm(pts[scene.labels == 0][:, None] - others[None], axis=-1).min()
    assert gap > delta  # no class-0 point inside a red disc
    assert np.abs(_at(spec, -1, "samples") - _at(spec, -2, "samples")).max() < 1e-3  # they stopped


def test_scene_3_touching_classes_open_a_margin_then_stop():
    scene, frames = _run(2)
    delta = lesson.SCENES[2].playground_values()["delta"]

    def gap(f):
        d = np.linalg.norm(f.points[:, None] - f.points[None], axis=-1)
        return d[scene.labels[:, None] != scene.labels[None]].min()
    assert gap(frames[0]) < delta < gap(frames[-1])


def test_scene_4_pfml_leaves_far_mislabeled_samples_alone():
    _, _, spec = _drawn(3)
    moved = lambda p: np.linalg.norm(_at(spec, -1, "mislabeled", p) - _at(spec, 0, "mislabeled", p), axis=1)  # noqa: E731
    assert moved(0).mean() < 0.3 * moved(1).mean()


def test_scene_5_pfml_proxies_take_different_sub_populations_contrastive_ones_the_mean():
    scene, values, spec = _drawn(4)
    names = [t.get("name") for t in spec["data"] if t.get("xaxis") == "x"]
    assert names.index("proxies") > max(names.index("samples"), names.index("force"))  # stars on top
    pts, r = _at(spec, -1, "samples"), 0.3  # about a sub-population's radius
    np.testing.assert_allclose(pts, _at(spec, 0, "samples"), atol=1e-6)  # samples held still
    for c in range(scene.num_classes):
        pfml = _at(spec, -1, "proxies", 0)[scene.proxy_labels == c]
        contrastive = _at(spec, -1, "proxies", 1)[scene.proxy_labels == c]
        for sub in (0, 1):
            centre = pts[(scene.labels == c) & (scene.subpop == sub)].mean(0)
            assert np.linalg.norm(pfml - centre, axis=1).min() < r, (c, sub)  # a proxy on each
        mean = pts[scene.labels == c].mean(0)
        assert np.linalg.norm(contrastive - mean, axis=1).max() < r  # all at the class mean
        assert np.linalg.norm(pts[scene.labels == c] - mean, axis=1).min() > 1.0  # in empty space


def test_a_scene_url_round_trips_with_back_and_next():
    at = _app({"scene": "3"})
    assert not at.exception and not at.warning
    assert at.subheader[0].value == "Scene 3 of 5: The repulsion margin"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not [t for t in spec["data"] if t.get("name") == "proxies" and t["x"]["bdata"]]  # M = 0 here
    assert len(spec["frames"]) == 61 and spec["layout"]["coloraxis"]["showscale"]
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
