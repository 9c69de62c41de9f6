"""The parts the noise-lab and sweep pages share: queue a grid for a background worker
(PFML_MAX_LAB_WORKERS grids run at once, each visitor within PFML_MAX_LAB_RUN_EPOCHS; the
rest wait, their queue position shown), pick a stored grid, and show its progress (with an
ETA) with Cancel/Resume and CSV. All state lives in the lab's Optuna storage. Each
browser holds a random owner token, kept in the URL (?lab=...) so a reload keeps it: only
the owner may cancel a grid; other sessions see it, with Cancel disabled."""
from __future__ import annotations

import contextlib
import re
import secrets
import time

import pandas as pd
import streamlit as st

from pfml_core import lab
from pfml_core.data import UPLOADS, data_root, faults, resolve_dataset_ref
from pfml_core.lab import STORAGE_ERRORS, Lab, migrate
from pfml_core.lab import launch as workers
from pfml_core.training import runs_dir
from studio import safe

ACTIVE = ("queued", "running")
NOT_YOURS = "Only the session that started this grid can cancel it."


OWNER_PARAM = "lab"  # the URL query parameter that carries the owner token
_TOKEN = re.compile(r"[0-9a-f]{32}")


def owner() -> str:
    """This browser's owner token: the URL's (?lab=..., after a reload) when well formed,
    else a new random one; written back into the URL so the next reload finds it."""
    if "lab_owner" not in st.session_state:
        given = st.query_params.get(OWNER_PARAM, "")
        st.session_state["lab_owner"] = given if _TOKEN.fullmatch(given) else secrets.token_hex(16)
    token = st.session_state["lab_owner"]
    if st.query_params.get(OWNER_PARAM) != token:
        st.query_params[OWNER_PARAM] = token
    return token


@contextlib.contextmanager
def store():
    """The lab, open for the block; a full or read-only disk is one message (page stops)."""
    try:
        s = Lab()
        pending = migrate.pending(migrate.old_path(), s)
    except ValueError as exc:  # data.faults.Fault
        safe.say("error", exc)
        st.stop()
    if s.recovered:  # a damaged store was moved aside (kept) and a fresh one started
        st.warning(f"The run store was damaged: it is kept as `{s.recovered.name}` and a "
                   "fresh one was started. Earlier grids are not listed.")
    if n := pending:
        st.info(f"{n} grid{'s' if n != 1 else ''} from an earlier version of the lab are kept in "
                "lab.sqlite, not listed here: run `python -m pfml_core lab-migrate` once to list them.")
    try:
        yield s
    except STORAGE_ERRORS as exc:  # a disk gone read-only or full under a running app
        safe.say("error", faults.describe(exc) or f"the lab store could not be used ({type(exc).__name__})")
        st.stop()


DATA_HELP = ("Uploads made on the Train page are kept under a stored name such as "
             "3fa2c1d0e9b8a7f6.npz. Paths are relative to the data root the operator set "
             "(PFML_DATA_ROOT); the app opens no other server path.")


def dataset(path: str, bundled: str) -> str:
    """What a grid trains on: the typed reference when there is one (an upload's stored
    name or a path under the operator's data root, see data.resolve_dataset_ref; never any
    other server path), else the bundled pick. Bad references raise ValueError."""
    if not str(path).strip():
        return bundled
    return resolve_dataset_ref(path, runs_dir() / UPLOADS, data_root())


def launch(kind: str, build, key: str, what: str = "Grid") -> int | None:
    """build() -> spec; store the grid (owned by this session), queue it for a worker,
    select it on the page. A ValueError from build (bad form input) or the queue (a
    bad PFML_MAX_LAB_WORKERS) becomes a message, never a traceback."""
    try:
        spec = build()
        with store() as s:
            gid = s.create_grid(kind, spec, owner=owner())
            position = workers.submit(gid, s, owner=owner())
    except ValueError as exc:
        safe.say("error", exc)
        return None
    st.session_state[key] = gid
    st.toast(f"{what} #{gid}: {lab.size(spec)} runs " + ("started" if position is None else
                                                    f"queued (position {position})"))
    return gid


def _label(g: dict) -> str:
    """Fixed facts only (the status lives in the polled panel below, never stale)."""
    n, spec = sum(g["counts"].values()), g["spec"]
    when = time.strftime("%m-%d %H:%M", time.localtime(g["created"]))
    what = ", ".join(spec.get("space", {}).get("loss", [])) or spec.get("mode", "")
    data = str(spec.get("data", "?")).replace("\\", "/").rsplit("/", 1)[-1]  # no server path
    return f"#{g['id']} · {data} · {what} · {n} runs · {when}"


def newest(grids: list[dict]) -> int | None:
    return max((g["id"] for g in grids), default=None)


def pick_grid(kind: str, key: str) -> tuple[int | None, int | None]:
    """Selectbox of the stored grids of `kind`, newest first (after reaping dead workers and
    starting queued grids on free slots); returns (the picked grid, the newest grid)."""
    with store() as s:
        kick(s)
        grids = s.grids(kind)
    if not grids:
        st.info("No grids yet: set one up above and press Run.")
        return None, None
    labels = {g["id"]: _label(g) for g in grids}
    if st.session_state.get(key) not in labels:
        st.session_state[key] = grids[0]["id"]
    return st.selectbox("Grid", list(labels), format_func=labels.get, key=key), newest(grids)


def kick(s: Lab) -> None:
    """Reap grids whose worker died and start queued grids on the slots that frees."""
    try:
        workers.dispatch(s)
    except ValueError as exc:  # a bad PFML_MAX_LAB_WORKERS: said once, the page still works
        safe.say("error", exc)


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
    owner()  # on every full run, so the URL keeps the token across reloads
    grid_id, last = pick_grid(kind, key)
    if grid_id is None or (polling := poll_every(grid_id)) is None:
        watch_new_grids(kind, last)
    if grid_id is None:
        return

    @st.fragment(run_every=polling)
    def panel() -> None:
        grid, frame = status(grid_id, kind)
        rerun_when_finished(grid, polling)
        draw(grid, frame)

    panel()


def watch_new_grids(kind: str, last: int | None, every: float = 5.0) -> None:
    """While nothing here polls: a cheap look at the store every few seconds, so a grid another
    visitor starts shows up without a reload (the page reruns once when one newer than `last`
    appears)."""

    @st.fragment(run_every=every)
    def watch() -> None:
        with store() as s:
            if newest(s.grids(kind)) != last:
                st.rerun()

    watch()


def eta_text(grid: dict, runs: list[dict], now: float | None = None) -> str:
    """' · about 3 min left' while a grid runs ('estimating time left' before its first
    epoch ends); '' once it stopped."""
    if grid["status"] not in ACTIVE:
        return ""
    left = lab.eta(runs, time.time() if now is None else now, grid["spec"].get("parallel", 1))
    if left is None:
        return " · estimating time left…"
    return f" · about {left / 60:.1f} min left" if left >= 60 else f" · about {left:.0f} s left"


def status(grid_id: int, prefix: str) -> tuple[dict, pd.DataFrame]:
    """Progress, Cancel/Resume, failures, CSV download; returns (grid, runs frame)."""
    with store() as s:
        kick(s)
        grid, runs, position = s.grid(grid_id), s.runs(grid_id), workers.position(s, grid_id)
    frame = lab.runs_frame([r for r in runs if r["id"] is not None])
    if "error" in frame:  # a failed run's traceback: its first line, no server paths
        frame["error"] = frame["error"].map(safe.one_line)
    counts = grid["counts"]
    n = sum(counts.values())
    finished = sum(counts.get(k, 0) for k in ("done", "pruned", "failed", "cancelled"))
    state = grid["status"] if position is None else f"queued (position {position})"
    st.progress(finished / max(n, 1), text=f"Grid #{grid_id}: **{state}** — "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                + eta_text(grid, runs))
    cols = st.columns(3)
    if grid["status"] in ACTIVE:
        mine = grid.get("owner") == owner()
        if cols[0].button("Cancel", key=f"{prefix}_cancel", disabled=not mine,
                          help=None if mine else NOT_YOURS):
            act(workers.cancel, grid_id)
    if grid["status"] in ("failed", "cancelled") and cols[0].button("Resume", key=f"{prefix}_resume"):
        act(workers.resume, grid_id)
    cols[1].download_button("Download CSV", frame.to_csv(index=False), f"grid_{grid_id}.csv",
                            "text/csv", key=f"{prefix}_csv")
    failed = frame[frame["status"] == "failed"] if len(frame) else frame
    for _, r in failed.iterrows():
        safe.say("error", r["error"], before=f"run {r['run']} failed: ")
    return grid, frame


def act(fn, grid_id: int) -> None:
    """workers.cancel / workers.resume as this session; a refusal (another session's grid, a
    worker still alive) is a message, else the page reruns."""
    try:
        with store() as s:
            fn(grid_id, s, owner=owner())
    except (ValueError, PermissionError) as exc:
        safe.say("error", exc)
        return
    st.rerun()


def grid_runs(grid_id: int) -> list[dict]:
    """The grid's runs as stored (with their curves and configs)."""
    with store() as s:
        return s.runs(grid_id)
