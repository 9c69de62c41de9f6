"""The noise lab's suspect labels: pick a finished run (of the grid, or a run folder) and
see its most suspect training labels as an image grid (or a table for feature data), the
detection figures where flips are known, and the ranked CSV."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pfml_core import lab
from pfml_core.viz import check_map
from studio import safe
from studio.lab_panel import store


@st.cache_data(max_entries=8, show_spinner="Ranking the run folder's labels…")
def _folder(path: str, mtime: float) -> tuple[pd.DataFrame, dict, str | None]:
    rm = lab.suspects.from_run_folder(path)
    return lab.suspects.table(rm), lab.suspects.summary(rm), rm.data


def _sources(runs: list[dict]) -> dict[str, tuple]:
    from pfml_core.training import list_runs

    out = {label: ("run", r) for label, r in lab.suspects.stored_runs(runs).items()}
    out.update({f"run folder {f['name']}": ("folder", f) for f in list_runs()})
    return out


def _load(source: tuple) -> tuple[pd.DataFrame, dict, str | None]:
    kind, what = source
    if kind == "folder":
        return _folder(what["path"], what["mtime"])
    with store() as s:
        table = s.samples(what["id"])
    return pd.DataFrame(table or {}), what["metrics"], what["config"]["data"]


def _show(top: pd.DataFrame, data: str | None, prefix: str) -> None:
    """Top suspects as titled thumbnails in one figure (its images travel inside the chart,
    so a rerun by the page's polling never leaves the browser asking for a deleted file),
    or a table for feature data."""
    try:
        ds = lab.dataset(data) if data else None
    except (ValueError, OSError):
        ds = None
    if ds is None or ds.kind != "image":
        st.dataframe(top, key=f"{prefix}_suspect_table")
        return
    titles = [f"#{r.row}: {r.given_label} → {r.suggested_label} · {r.score:.3f}"
              + (" · flipped" if getattr(r, "flipped", False) else "") for r in top.itertuples()]
    st.plotly_chart(check_map.thumbnails([ds.X[int(r)] for r in top["row"]], titles),  # names escaped there
                    key=f"{prefix}_suspect_thumbs")


def suspects_panel(runs: list[dict], prefix: str = "noise", grid_detection=None) -> None:
    """Pick a finished run (of this grid, or a run folder) and show its most suspect labels,
    the detection figures where flips are known, and the ranked CSV. grid_detection (the
    grid's table over all its runs) shows only beside a run of that grid."""
    sources = _sources(runs)
    if not sources:
        st.info("No finished run with label margins yet.")
        return
    # keyed by the number of choices: when a run finishes, the pick returns to the default
    pick = st.selectbox("Run", list(sources), key=f"{prefix}_suspect_run_{len(sources)}")
    try:
        table, summary, data = _load(sources[pick])
    except ValueError as exc:
        safe.say("error", exc)
        return
    if table.empty:
        st.info("This run kept no per-sample table.")
        return
    st.markdown(lab.suspects.describe(summary, int(table["flipped"].sum()) if "flipped" in table else 0))
    if sources[pick][0] == "run" and grid_detection is not None and len(grid_detection):
        st.caption("This grid's detection over all its runs (mean over seeds):")
        st.dataframe(grid_detection, hide_index=True, key=f"{prefix}_detect_table")
    top = st.slider("Show the most suspect", 8, 64, 16, 8, key=f"{prefix}_suspect_top")
    _show(table.head(top), data, prefix)
    cols = [c for c in (*lab.suspects.COLUMNS, "flipped") if c in table]
    st.download_button("Download suspects CSV", table[cols].to_csv(index=False),
                       "suspects.csv", "text/csv", key=f"{prefix}_suspect_csv")
