"""A Plotly chart that stays mounted while its figure changes: a custom component (no npm)
whose index.html calls Plotly.react with each new figure, so a live chart redraws its data in
place where st.plotly_chart would remount it. plotly.js is the plotly package's own file,
copied beside index.html (Streamlit serves only that folder). A click returns the point in
st.plotly_chart's selection shape, so viz.training.selected_points reads both. With a sprite
(viz.check_map.sprite), hovering a point shows its image beside the pointer, in the frame."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components

HERE = Path(__file__).with_name("live_plot")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _copy(src: Path, dst: Path) -> None:
    """dst = src unless it already is; atomic (another server may be importing this too)."""
    data = src.read_bytes()
    if dst.exists() and dst.stat().st_size == len(data) and dst.read_bytes() == data:
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dst)


def folder() -> Path:
    """The component's folder with plotly.min.js in it: this package's (the copy is ignored
    by git), else a private temp folder where the checkout is read-only."""
    try:
        _copy(PLOTLY_JS, HERE / "plotly.min.js")
        return HERE
    except OSError:
        out = Path(tempfile.mkdtemp(prefix="pfml-live-plot-"))
        for src in (PLOTLY_JS, HERE / "index.html"):
            _copy(src, out / src.name)
        return out


_component = components.declare_component("live_plot", path=str(folder()))


def live_plot(fig: go.Figure, key: str, on_click=None, sprite: dict | None = None) -> dict | None:
    """Draw fig under `key` (keep it the same from run to run: the chart stays mounted and
    only its data change). Returns the last click, {"selection": {"points": [{customdata,
    legendgroup, curve_number, point_index, x, y}]}, "at": ms}, or None; on_click runs once
    per click (before the rerun, like a widget's on_change). sprite: {src, tile, cols, n,
    column}, a point's tile index being its customdata[column] (none there: no thumbnail)."""
    last = st.session_state.get(f"{key}_json")
    if last is None or last[0] is not fig:  # a poll that brings no news sends the same text
        st.session_state[f"{key}_json"] = last = (fig, fig.to_json())
    with st.container(key=f"{key}_box"):  # a stable place that tests and benches can find
        return _component(figure=last[1], sprite=sprite, key=key, default=None,
                          on_change=on_click)
