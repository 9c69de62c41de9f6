"""Field playground: a class field, force arrows and samples + proxies descending the
total energy (paper Eq. 6), live; every control in the URL (?pg_hide=... hides some)."""
import streamlit as st

from pfml_core.playground import PRESETS, descent, export
from pfml_core.playground import url_state as state
from pfml_core.viz import field as vf
from studio import cache
from studio.nav import use_app_navigation

TICK_S = 0.35  # seconds between steps while playing
MAX_STEPS = 400

use_app_navigation()  # first: see studio/nav.py
st.title("Field playground")
if "pg_url" not in st.session_state:  # validate the URL once, before any widget reads it
    st.session_state.pg_url = state.parse(st.query_params.to_dict())
url_values, hidden, notices = st.session_state.pg_url
for notice in notices:
    st.warning(notice)


def control(c: state.Control):
    """The widget of one control, bound to the URL; hidden controls keep their URL value."""
    if c.name in hidden:
        return url_values[c.name]
    box = st.sidebar
    common = dict(key=c.key, help=c.help, bind="query-params")
    if c.kind == "choice":
        return box.selectbox(c.name, c.choices, index=c.choices.index(c.default), **common)
    if c.kind == "bool":
        return box.toggle(c.name, value=c.default, **common)
    if c.name == "seed":
        return box.number_input(c.name, c.low, c.high, c.default, 1, **common)
    return box.slider(c.name, c.low, c.high, c.default, c.step or 1, **common)


values = {c.name: control(c) for c in state.CONTROLS}
cfg = state.scene_config(values)
potentials = ["pfml"] + ([values["compare_potential"]] if values["compare"] else [])
try:
    scene = cache.pg_scene(cfg)
except ValueError as err:
    st.error(f"Bad scene settings: {err}")
    st.stop()
dyns = {p: state.dynamics(values, p) for p in potentials}
cls = min(int(values["field_class"]), scene.num_classes - 1)
view = descent.bounds(scene)
for note in scene.notes:
    st.caption(note)
st.caption(PRESETS[cfg.preset].teaches)

sig = (cfg, tuple(potentials))
if st.session_state.get("pg_sim", {}).get("sig") != sig:
    st.session_state.pg_sim = {"sig": sig, "frames": {p: [descent.initial_frame(scene, dyns[p])]
                                                      for p in potentials}}
    st.session_state.pg_playing = False
sim = st.session_state.pg_sim


def advance(steps: int = 1):
    for p in potentials:
        descent.advance(scene, sim["frames"][p], dyns[p], steps)


def reset():
    st.session_state.pop("pg_sim", None)


b = st.columns(4)
if b[0].button("Play", key="pg_play", icon=":material/play_arrow:"):
    st.session_state.pg_playing = True
if b[1].button("Pause", key="pg_pause", icon=":material/pause:"):
    st.session_state.pg_playing = False
b[2].button("Step", key="pg_step", icon=":material/skip_next:", on_click=advance)
b[3].button("Reset", key="pg_reset", icon=":material/restart_alt:", on_click=reset)
playing = st.session_state.get("pg_playing", False)


@st.fragment(run_every=TICK_S if playing else None)
def live_view():
    """Runs on the server each tick: one step, then redraw field, arrows and energy."""
    frames = sim["frames"]
    if st.session_state.get("pg_playing") and frames["pfml"][-1].step < MAX_STEPS:
        advance()
    st.markdown(f"**Step {frames['pfml'][-1].step}**" + (" (playing)" if playing else ""))
    cols = st.columns(len(potentials))
    for col, p in zip(cols, potentials):
        snap = descent.snapshot(scene, frames[p][-1], dyns[p], cls, view)
        title = f"{p}: class {cls} field, step {frames[p][-1].step}"
        col.plotly_chart(vf.field_figure(scene, frames[p][-1], title=title, **snap), key=f"pg_chart_{p}")
    st.plotly_chart(vf.energy_figure({p: [f.energy for f in frames[p]] for p in potentials}),
                    key="pg_energy")
    if values["compare"] and scene.flipped.any():
        st.subheader("How far was each mislabeled point dragged?")
        st.dataframe(vf.compare_table(scene, {p: descent.displacement(frames[p], scene.flipped)
                                              for p in potentials}), key="pg_table")


live_view()
frames = sim["frames"]["pfml"]
d = st.columns(3)
d[0].download_button("Frame (PNG)", lambda: export.png_bytes(scene, frames[-1], dyns["pfml"], cls, view),
                     "pfml_frame.png", "image/png", key="pg_png", on_click="ignore")
d[1].download_button("Animation (GIF)", lambda: export.gif_bytes(scene, frames, dyns["pfml"], cls, view),
                     "pfml_descent.gif", "image/gif", key="pg_gif", on_click="ignore")
d[2].download_button("Scene (CSV)", lambda: export.scene_csv(scene, frames[-1]), "pfml_scene.csv",
                     "text/csv", key="pg_csv", on_click="ignore")
