"""Field playground: a class field, force arrows and samples + proxies descending the total
energy (paper Eq. 6). The server records the descent in cached chunks; the browser plays it
(Play / Pause / Step / Reset and a step slider) without asking the server again. A preset
sets the controls to its values; ?pg_hide=... hides some. The URL always holds the state:
a new link sets every control (bad values fall back with a notice), and after each run the
page writes the controls back (url_state.to_query). Widgets are not bound to the URL one by
one, because a value set by code (a preset) would not reach the URL that way."""
import time

import streamlit as st

from pfml_core.playground import PRESETS, export
from pfml_core.playground import url_state as state
from pfml_core.viz import field as vf
from pfml_core.viz import fieldmap
from studio import cache
from studio.nav import use_app_navigation

HEADINGS = {"preset": "Scene", "alpha": "Physics", "step_size": "Descent", "field_class": "View"}
FLUSH_S = 0.35  # step 0 reaches the browser and is drawn before the descent takes the CPU
CHART = dict(config={"displayModeBar": False}, theme=None)  # the figure brings its own look;
# Streamlit's theme would also walk every animation frame, doubling the time to draw

use_app_navigation()  # first: see studio/nav.py
st.title("Field playground")
query = st.query_params.to_dict()
if st.session_state.get("pg_query") != query:  # a link this page did not write: it sets everything
    st.session_state.pg_url = state.parse({k: st.query_params.get_all(k) for k in query})
    st.session_state.update({c.key: st.session_state.pg_url[0][c.name] for c in state.CONTROLS})
url_values, hidden, notices = st.session_state.pg_url
for notice in notices:
    st.warning(notice)


def on_preset():
    """Like TensorFlow Playground: a preset sets the scene controls to its values."""
    start = state.baseline(st.session_state.pg_preset)
    st.session_state.update({state.PREFIX + n: start[n] for n in state.SCENE_CONTROLS})


def on_separate_rep():
    if st.session_state.pg_separate_rep:  # start from the margin in use
        st.session_state.pg_delta_rep = st.session_state.pg_delta


def control(c: state.Control, base: dict, values: dict):
    """The widget of one control, showing the value in use; hidden controls keep their
    value. `base`: the current preset's values (the widget defaults)."""
    if c.name in hidden:
        return st.session_state.get(c.key, url_values[c.name])
    box, disabled, high = st.sidebar, False, c.high
    if c.name in HEADINGS:
        box.subheader(HEADINGS[c.name])
    if c.name in PRESETS[values.get("preset", base["preset"])].fixed:  # the preset fixes it
        st.session_state[c.key], disabled = base[c.name], True
    if c.name == "field_class":  # only classes that exist
        high = int(values["classes"]) - 1
        st.session_state[c.key] = min(int(st.session_state.get(c.key, 0)), high)
    if c.name == "delta_rep" and not values["separate_rep"]:  # shown as the delta in use
        st.session_state.pg_delta_rep_shown = values["delta"]
        box.slider(c.label + " = delta", c.low, c.high, step=c.step, format=c.fmt, disabled=True,
                   key="pg_delta_rep_shown", help=c.help)
        return values["delta"]
    common = dict(key=c.key, help=c.help,
                  disabled=disabled or (c.name == "compare_potential" and not values["compare"]))
    if c.kind == "choice":
        names = (lambda p: PRESETS[p].label) if c.name == "preset" else str
        return box.selectbox(c.label, c.choices, index=c.choices.index(base[c.name]),
                             format_func=names, on_change=on_preset if c.name == "preset" else None,
                             **common)
    if c.kind == "bool":
        return box.toggle(c.label, value=base[c.name], **common,
                          on_change=on_separate_rep if c.name == "separate_rep" else None)
    if c.name == "seed":
        return box.number_input(c.label, c.low, c.high, base[c.name], 1, **common)
    return box.slider(c.label, c.low, high, base[c.name], c.step or 1, format=c.fmt, **common)


values: dict = {}
for c in state.CONTROLS:
    values[c.name] = control(c, state.baseline(values.get("preset", state.DEFAULT_PRESET)), values)
written = {k: v for k, v in query.items() if not k.startswith(state.PREFIX)}
written.update(state.to_query(values, hidden))
if written != query:
    st.query_params.from_dict(written)
st.session_state.pg_query = written
cfg = state.scene_config(values)
potentials = ["pfml"] + ([values["compare_potential"]] if values["compare"] else [])
dyns = tuple(state.dynamics(values, p) for p in potentials)
cls, steps = int(values["field_class"]), int(values["steps"])
try:
    scene = cache.pg_scene(cfg)
except ValueError as err:
    st.error(f"This scene cannot be built: {err}")
    st.stop()

st.caption(PRESETS[cfg.preset].teaches)
for d in dyns:
    st.caption(f"**{cache.pg_panel_label(d)}**: " +
               fieldmap.legend_sentence(d.potential, cls, cache.pg_chunk(cfg, d, cls, 0).reference))
fixed = bool(values["fixed_scale"])
chart, sig = st.empty(), (cfg, dyns, cls, steps, fixed)
if st.session_state.get("pg_drawn") != sig:  # a new scene: step 0 at once, then the animation
    chart.plotly_chart(cache.pg_figure(cfg, dyns, cls, 0, fixed), key="pg_chart_first", **CHART)
    time.sleep(FLUSH_S)  # let the server send step 0 before the descent holds the interpreter
chart.plotly_chart(cache.pg_figure(cfg, dyns, cls, steps, fixed), key="pg_chart", **CHART)
st.session_state.pg_drawn = sig
st.caption(f"Step 0 is the scene as built. The server computed steps 0-{steps}; your browser "
           "plays them: Play, Pause, Step (one step), Reset, or drag the step slider.")

st.plotly_chart(cache.pg_energy_figure(cfg, dyns, cls, steps), key="pg_energy", **CHART)
movies = {d.potential: cache.pg_movie(cfg, d, cls, steps) for d in dyns}
if values["compare"] and scene.flipped.any():
    st.subheader(f"How far was each mislabeled point dragged in {steps} steps?")
    st.dataframe(vf.compare_table(scene, {p: m.dragged(scene.flipped) for p, m in movies.items()}),
                 key="pg_table")
shown = {cache.pg_panel_label(d): movies[d.potential] for d in dyns}  # the figure's panels
last = movies["pfml"].frame(-1)
d = st.columns(4)
d[0].download_button(f"Step {steps} (PNG)", lambda: export.figure_png(scene, shown, -1, fixed),
                     "pfml_frame.png", "image/png", key="pg_png", on_click="ignore")
for col, fmt, mime in ((d[1], "GIF", "image/gif"), (d[2], "MP4", "video/mp4")):  # the whole figure
    col.download_button(f"Animation ({fmt})",
                        lambda fmt=fmt: export.figure_animation(scene, shown, fmt, fixed_scale=fixed),
                        f"pfml_descent.{fmt.lower()}", mime, key=f"pg_{fmt.lower()}", on_click="ignore")
d[3].download_button(f"Scene at step {steps} (CSV)", lambda: export.scene_csv(scene, last),
                     "pfml_scene.csv", "text/csv", key="pg_csv", on_click="ignore")
