"""The train page's one session object: the session's job and the figures drawn from it.
Figures are rebuilt only when the job has something new (its version); each epoch's map frame
is built once and kept, so a redraw never re-projects or rebuilds past epochs."""
from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pfml_core.data import faults
from pfml_core.lab import suspects as lab_suspects
from pfml_core.training import TrainJob
from pfml_core.viz import training as viz

KEY = "train_view"
MAX_FRAMES = 25  # animation frames kept in the figure (evenly spread, newest always in)
NN_EVERY_S = 5.0  # while training, the neighbours figure follows new epochs at most this often
HEARTBEAT_S = 120.0  # a job whose page stopped polling this long stops (hidden tabs poll slowly)
MAX_JOBS_ENV = "PFML_MAX_TRAIN_JOBS"  # training runs at once on this server (operator setting)
_LIVE: weakref.WeakSet[TrainJob] = weakref.WeakSet()  # every session's job, server-wide
_LOCK = threading.Lock()


def max_jobs() -> int:
    """How many training runs the server runs at once: PFML_MAX_TRAIN_JOBS, default 2."""
    raw = os.environ.get(MAX_JOBS_ENV, "2")
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_JOBS_ENV} must be a whole number >= 1, got {raw!r}")
    return int(raw)


def _free_finished() -> None:
    """Slots of this server's finished jobs (a TrainJob frees its own as its process ends;
    this is for any job that ended without)."""
    for job in list(_LIVE):
        if not job.running and getattr(job, "slot", None) is not None:
            job.slot.release()


def running_elsewhere(mine: TrainJob | None) -> int:
    """Training runs other sessions have going now."""
    return sum(1 for j in list(_LIVE) if j is not mine and j.running)


@dataclass
class TrainView:
    job: TrainJob | None = None
    polling: bool = False  # the status fragment polls (set on each full run)
    frames: dict = field(default_factory=dict)  # (method, epoch, suspects ringed) -> go.Frame
    cache: dict = field(default_factory=dict)   # name -> (key, value)
    nn_at: float = 0.0  # time.monotonic() the neighbours figure was last built

    def replace(self, job: TrainJob) -> TrainJob:
        """One job per session: the previous one is stopped before the next is kept."""
        if self.job is not None:
            self.job.close()
        self.job, self.frames, self.cache = job, {}, {}
        return job

    def start(self, make_job) -> TrainJob | None:
        """Start make_job() as this session's job, holding one of the runs folder's
        max_jobs() training slots (shared by every server on that folder), unless all are
        taken (None: say so and let the user retry). A full or read-only runs folder is a
        ValueError (one line)."""
        with _LOCK:
            if self.job is not None and self.job.running:  # its own job gives way first
                self.job.close()
            _free_finished()
            if running_elsewhere(self.job) >= max_jobs():
                return None
            slot = TrainJob.claim_slot(max_jobs())
            if slot is None:  # another server on this runs folder holds the rest
                return None
            try:
                with faults.said("the run folder could not be made"):
                    job = self.replace(make_job())
            except BaseException:
                slot.release()
                raise
            job.slot = slot
            job = job.start()
            _LIVE.add(job)
            return job

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    @property
    def active(self) -> bool:
        """Something will still change: training runs or maps are being computed."""
        return self.job is not None and (self.job.running or self.job.maps_pending)

    def cached(self, name: str, key, build):
        """build(), kept until key changes."""
        if name not in self.cache or self.cache[name][0] != key:
            self.cache[name] = (key, build())
        return self.cache[name][1]

    def neighbours(self, epoch: int, query: int, build, live: bool) -> go.Figure:
        """build()'s neighbours figure of (epoch, query). While the run is live a new epoch's
        is built at most every NN_EVERY_S (a new query's at once): redrawn every epoch, its
        images cost the browser about as much as the live map."""
        last = self.cache.get("neighbours")
        if live and last and last[0][1] == query and time.monotonic() - self.nn_at < NN_EVERY_S:
            return last[1]
        if last is None or last[0] != (epoch, query):
            self.nn_at = time.monotonic()
        return self.cached("neighbours", (epoch, query), build)

    def curves(self) -> go.Figure:
        snaps = self.job.snapshots
        return self.cached("curves", len(snaps), lambda: viz.curves_figure(pd.DataFrame(
            [{"epoch": s.epoch, "loss": s.loss, **s.metrics} for s in list(snaps)],
            columns=None if snaps else ["epoch", "loss"])))

    def map_figure(self, names: dict, sources=None, suspects=None) -> go.Figure | None:
        """The animated map: UMAP once the newest epoch has one, PCA meanwhile; hover names
        each point's row of the data (sources: an image's path in its zip or folder);
        suspects (self.suspects()) are ringed."""
        method, layouts = self.job.map_view()
        if not layouts:
            return None
        epochs = _spread(sorted(layouts), MAX_FRAMES)
        ringed = suspects is not None

        def build():
            meta = viz.with_suspects(self.job.meta, suspects) if ringed else self.job.meta
            for e in epochs:
                if (method, e, ringed) not in self.frames:
                    self.frames[(method, e, ringed)] = viz.map_frame(e, layouts[e], meta)
            return viz.map_figure([self.frames[(method, e, ringed)] for e in epochs],
                                  layouts[epochs[-1]], meta, names, method, sources)

        return self.cached("map", (method, tuple(epochs), ringed), build)

    def suspects(self, names: dict) -> pd.DataFrame | None:
        """The run's own suspect labels: the training rows whose label margin, averaged over
        the epochs up to held-out R@1's peak, is negative (pfml_core.lab.suspects); None
        when the run recorded no margins."""
        def build():
            rm = lab_suspects.from_history(self.job.snapshots, self.job.config.noise, names["train"])
            table = None if rm is None else lab_suspects.table(rm, with_cleanlab=False)
            return None if table is None else table[table["score"] > 0]

        return self.cached("suspects", len(self.job.snapshots), build)

    def live_map(self, names: dict, sources=None) -> go.Figure:
        """The newest mapped epoch alone (no frames, slider or Play): what the live chart
        redraws in place while the run goes on (map_figure is the finished run's); before
        epoch 0, an empty map that holds its place."""
        method, layouts = self.job.map_view()
        if not layouts:
            return self.cached("live_map", None, viz.waiting_map)
        e, meta = max(layouts), self.job.meta

        def build():
            if (method, e, False) not in self.frames:
                self.frames[(method, e, False)] = viz.map_frame(e, layouts[e], meta)
            fig = viz.map_figure([self.frames[(method, e, False)]], layouts[e], meta, names, method,
                                 sources)
            # assigned: update_layout(sliders=[]) would keep the slider
            fig.frames = fig.layout.sliders = fig.layout.updatemenus = ()
            return fig

        return self.cached("live_map", (method, e), build)


def _spread(epochs: list[int], n: int) -> list[int]:
    """At most n of the epochs, evenly spread, first and last included."""
    if len(epochs) <= n:
        return epochs
    return [epochs[i] for i in np.unique(np.linspace(0, len(epochs) - 1, n).round().astype(int))]


def view() -> TrainView:
    """This session's TrainView (created on first use)."""
    if KEY not in st.session_state:
        st.session_state[KEY] = TrainView()
    return st.session_state[KEY]
