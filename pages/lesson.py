"""Lesson: five playground scenes that walk a class through PFML's ideas, one URL each
(?scene=3), with two or three sentences, the scene animating in the browser (the
playground's own descent and figure) and Back / Next."""
from urllib.parse import urlencode

import streamlit as st

from pfml_core.playground import lesson
from pfml_core.playground import url_state as state
from pfml_core.viz import field as vf
from pfml_core.viz import fieldmap
from studio import cache
from studio.nav import use_app_navigation

CHART = dict(config={"displayModeBar": False}, theme=None)  # see pages/playground.py

use_app_navigation()  # first: see studio/nav.py
index, notice = lesson.pick(st.query_params.to_dict())
if st.query_params.get(lesson.PARAM) != str(index + 1):  # the URL names the scene shown
    st.query_params[lesson.PARAM] = str(index + 1)
total, scene_def = len(lesson.SCENES), lesson.SCENES[index]


def go(i: int) -> None:
    st.query_params[lesson.PARAM] = str(i + 1)


st.title("Lesson: PFML in five scenes")
if notice:
    st.warning(notice)
st.subheader(f"Scene {index + 1} of {total}: {scene_def.title}")
st.markdown(scene_def.text)
values = scene_def.playground_values()
cfg = state.scene_config(values)
dyns = tuple(state.dynamics(values, p) for p in
             ["pfml"] + ([values["compare_potential"]] if values["compare"] else []))
cls, steps = int(values["field_class"]), int(values["steps"])
scene = cache.pg_scene(cfg)
for d in dyns:
    st.caption(f"**{cache.pg_panel_label(d)}**: " +
               fieldmap.legend_sentence(d.potential, cls, cache.pg_chunk(cfg, d, cls, 0).reference))
fixed = bool(values["fixed_scale"])
chart, sig = st.empty(), (cfg, dyns, cls, steps, fixed)
if st.session_state.get("lesson_drawn") != sig:  # a new scene: step 0 at once, then the animation
    chart.plotly_chart(cache.pg_figure(cfg, dyns, cls, 0, fixed), key="lesson_chart_first", **CHART)
chart.plotly_chart(cache.pg_figure(cfg, dyns, cls, steps, fixed), key="lesson_chart", **CHART)
st.session_state.lesson_drawn = sig
st.caption("Press Play to run the descent; Step moves one step, Reset goes back to the start.")
if values["compare"] and scene.flipped.any():
    movies = {d.potential: cache.pg_movie(cfg, d, cls, steps) for d in dyns}
    st.dataframe(vf.compare_table(scene, {p: m.dragged(scene.flipped) for p, m in movies.items()}),
                 key="lesson_table")

back, where, forward = st.columns([1, 2, 1])
back.button("Back", key="lesson_back", icon=":material/arrow_back:", disabled=index == 0,
            on_click=go, args=(index - 1,))
forward.button("Next", key="lesson_next", icon=":material/arrow_forward:", disabled=index == total - 1,
               on_click=go, args=(index + 1,))
where.markdown(f":material/open_in_new: [Open this scene in the playground]"
               f"(playground?{urlencode(state.to_query(values))})")  # a plain link: works on any page
