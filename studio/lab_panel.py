"""The parts the noise-lab and sweep pages share: start a grid in a
background worker, pick a stored grid, and show its progress with Cancel/Resume and CSV.
All state lives in the store (runs_dir()/lab.sqlite), so a refresh or restart loses nothing."""
from __future__ import annotations

import contextlib
import time

import pandas as pd
import streamlit as st

from pfml_core import lab
from pfml_core.lab import Store, worker

ACTIVE = ("queued", "running")


@contextlib.contextmanager
def store():
    s = Store()
    try:
        yield s
    finally:
        s.close()


def launch(kind: str, build, key: str, what: str = "Grid") -> int | None:
    """build() -> (spec, runs); store the grid, start its worker, select it on the page.
    A ValueError from build (bad form input) becomes a message, never a traceback."""
    try:
        spec, runs = build()
    except ValueError as exc:
        st.error(str(exc))
        return None
    with store() as s:
        gid = s.create_grid(kind, spec, runs)
        worker.start(gid, s)
    st.session_state[key] = gid
    st.toast(f"{what} #{gid}: {len(runs)} runs started")
    return gid


def _label(g: dict) -> str:
    """Fixed facts only (the status lives in the polled panel below, never stale)."""
    n, spec = sum(g["counts"].values()), g["spec"]
    when = time.strftime("%m-%d %H:%M", time.localtime(g["created"]))
    what = ", ".join(spec.get("losses", [])) or spec.get("mode", "")
    return f"#{g['id']} · {spec.get('data', '?')} · {what} · {n} runs · {when}"


def pick_grid(kind: str, key: str) -> int | None:
    """Selectbox of the stored grids of `kind`, newest first (after reaping dead workers)."""
    with store() as s:
        s.reap_stale()
        grids = s.grids(kind)
    if not grids:
        st.info("No grids yet: set one up above and press Run.")
        return None
    labels = {g["id"]: _label(g) for g in grids}
    if st.session_state.get(key) not in labels:
        st.session_state[key] = grids[0]["id"]
    return st.selectbox("Grid", list(labels), format_func=labels.get, key=key)


def poll_every(grid_id: int | None, seconds: float = 2.0) -> float | None:
    """Fragment refresh period: poll while the grid is queued or running, else not at all."""
    if grid_id is None:
        return None
    with store() as s:
        return seconds if s.grid(grid_id)["status"] in ACTIVE else None


def rerun_when_finished(grid: dict, polling: float | None) -> None:
    """A polled grid that just finished: rerun the whole page (grid list, stop polling)."""
    if polling and grid["status"] not in ACTIVE:
        st.rerun()


def results_panel(kind: str, key: str, draw) -> None:
    """The grid picker, then a fragment that shows the picked grid's status panel and
    draw(grid, runs frame), polling while the grid is queued or running."""
    grid_id = pick_grid(kind, key)
    if grid_id is None:
        return
    polling = poll_every(grid_id)

    @st.fragment(run_every=polling)
    def panel() -> None:
        grid, frame = status(grid_id, kind)
        rerun_when_finished(grid, polling)
        draw(grid, frame)

    panel()


def status(grid_id: int, prefix: str) -> tuple[dict, pd.DataFrame]:
    """Progress, Cancel/Resume, failures, CSV download; returns (grid, runs frame)."""
    with store() as s:
        s.reap_stale()
        grid, frame = s.grid(grid_id), lab.grid_frame(s, grid_id)
    n = len(frame)
    counts = frame["status"].value_counts().to_dict() if n else {}
    finished = sum(counts.get(k, 0) for k in ("done", "failed", "cancelled"))
    st.progress(finished / max(n, 1), text=f"Grid #{grid_id}: **{grid['status']}** — "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    cols = st.columns(3)
    if grid["status"] in ACTIVE and cols[0].button("Cancel", key=f"{prefix}_cancel"):
        with store() as s:
            worker.cancel(grid_id, s)
        st.rerun()
    if grid["status"] in ("failed", "cancelled") and cols[0].button("Resume", key=f"{prefix}_resume"):
        with store() as s:
            worker.resume(grid_id, s)
        st.rerun()
    cols[1].download_button("Download CSV", frame.to_csv(index=False), f"grid_{grid_id}.csv",
                            "text/csv", key=f"{prefix}_csv")
    failed = frame[frame["status"] == "failed"] if n else frame
    for _, r in failed.iterrows():
        st.error(f"run {r['run']} failed: {str(r['error']).splitlines()[0]}")
    return grid, frame
