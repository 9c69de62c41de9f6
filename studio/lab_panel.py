"""The parts the noise-lab and sweep pages share: start a grid in a
background worker, pick a stored grid, and show its progress (with an ETA) with Cancel/Resume
and CSV. All state lives in the store (runs_dir()/lab.sqlite), so a refresh or restart loses
nothing. For the noise lab: the suspect labels of a run, as an image grid (or a table for
feature data) with CSV download."""
from __future__ import annotations

import contextlib
import time

import pandas as pd
import streamlit as st

from pfml_core import lab
from pfml_core.data import UPLOADS, data_root, resolve_dataset_ref
from pfml_core.lab import Store, worker
from pfml_core.training import runs_dir
from studio import safe

ACTIVE = ("queued", "running")


@contextlib.contextmanager
def store():
    s = Store()
    if s.recovered:  # a damaged store was moved aside (kept) and a fresh one started
        st.warning(f"The run store was damaged: it is kept as `{s.recovered.name}` and a "
                   "fresh one was started. Earlier grids are not listed.")
    try:
        yield s
    finally:
        s.close()


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
    """build() -> (spec, runs); store the grid, start its worker, select it on the page.
    A ValueError from build (bad form input) becomes a message, never a traceback."""
    try:
        spec, runs = build()
    except ValueError as exc:
        safe.say("error", exc)
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
    data = str(spec.get("data", "?")).replace("\\", "/").rsplit("/", 1)[-1]  # no server path
    return f"#{g['id']} · {data} · {what} · {n} runs · {when}"


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
        s.reap_stale()
        grid, runs = s.grid(grid_id), s.runs(grid_id)
    frame = lab.runs_frame(runs)
    if "error" in frame:  # a failed run's traceback: its first line, no server paths
        frame["error"] = frame["error"].map(safe.one_line)
    n = len(frame)
    counts = frame["status"].value_counts().to_dict() if n else {}
    finished = sum(counts.get(k, 0) for k in ("done", "failed", "cancelled"))
    st.progress(finished / max(n, 1), text=f"Grid #{grid_id}: **{grid['status']}** — "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                + eta_text(grid, runs))
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
        safe.say("error", r["error"], before=f"run {r['run']} failed: ")
    return grid, frame


def grid_runs(grid_id: int) -> list[dict]:
    """The grid's runs as stored (with their curves and configs)."""
    with store() as s:
        return s.runs(grid_id)


def _default_first(runs: list[dict]) -> list[dict]:
    """Finished runs, PFML at the highest noise rate and lowest seed first."""
    done = [r for r in runs if r["status"] == "done" and "suspect_epochs" in (r["metrics"] or {})]
    return sorted(done, key=lambda r: (r["params"].get("loss") != "pfml",
                                       -r["params"].get("noise", 0), r["params"].get("seed", 0)))


def _run_label(r: dict) -> str:
    p = r["params"]
    return (f"run {r['id']}: {p.get('loss')} · {p.get('noise', 0):.0%} noise · seed {p.get('seed')}"
            if "loss" in p else f"run {r['id']}")


@st.cache_data(max_entries=8, show_spinner="Ranking the run folder's labels…")
def _folder(path: str, mtime: float) -> tuple[pd.DataFrame, dict, str | None]:
    rm = lab.suspects.from_run_folder(path)
    return lab.suspects.table(rm), lab.suspects.summary(rm), rm.data


def _sources(runs: list[dict]) -> dict[str, tuple]:
    from pfml_core.training import list_runs

    out = {_run_label(r): ("run", r) for r in _default_first(runs)}
    out.update({f"run folder {f['name']}": ("folder", f) for f in list_runs()})
    return out


def _load(source: tuple) -> tuple[pd.DataFrame, dict, str | None]:
    kind, what = source
    if kind == "folder":
        return _folder(what["path"], what["mtime"])
    with store() as s:
        table = s.samples(what["id"])
    return pd.DataFrame(table or {}), what["metrics"], what["config"]["data"]


def _image(x):
    import numpy as np

    x = np.asarray(x)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)


def _show(top: pd.DataFrame, data: str | None, prefix: str) -> None:
    """Top suspects as captioned thumbnails (image data) or a table (feature data)."""
    try:
        ds = lab.dataset(data) if data else None
    except (ValueError, OSError):
        ds = None
    if ds is None or ds.kind != "image":
        st.dataframe(top, key=f"{prefix}_suspect_table")
        return
    cols = st.columns(8)
    for i, r in enumerate(top.itertuples()):
        flag = " · flipped" if getattr(r, "flipped", False) else ""
        cols[i % 8].image(_image(ds.X[int(r.row)]), clamp=True, width="stretch",
                          caption=f"#{r.row}: {r.given_label} → {r.suggested_label} · {r.score:.3f}{flag}")


def suspects_panel(runs: list[dict], prefix: str = "noise") -> None:
    """Pick a finished run (of this grid, or a run folder) and show its most suspect labels,
    the detection figures where flips are known, and the ranked CSV."""
    sources = _sources(runs)
    if not sources:
        st.info("No finished run with label margins yet.")
        return
    pick = st.selectbox("Run", list(sources), key=f"{prefix}_suspect_run")
    try:
        table, summary, data = _load(sources[pick])
    except ValueError as exc:
        safe.say("error", exc)
        return
    if table.empty:
        st.info("This run kept no per-sample table.")
        return
    st.markdown(lab.suspects.describe(summary, int(table["flipped"].sum()) if "flipped" in table else 0))
    top = st.slider("Show the most suspect", 8, 64, 16, 8, key=f"{prefix}_suspect_top")
    _show(table.head(top), data, prefix)
    cols = [c for c in (*lab.suspects.COLUMNS, "flipped") if c in table]
    st.download_button("Download suspects CSV", table[cols].to_csv(index=False),
                       "suspects.csv", "text/csv", key=f"{prefix}_suspect_csv")
