"""The train page's one session object: the session's job and the figures drawn from it.
Figures are rebuilt only when the job has something new (its version); each epoch's map frame
is built once and kept, so a redraw never re-projects or rebuilds past epochs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pfml_core.training import TrainJob
from pfml_core.viz import training as viz

KEY = "train_view"
MAX_FRAMES = 25  # animation frames kept in the figure (evenly spread, newest always in)
HEARTBEAT_S = 120.0  # a job whose page stopped polling this long stops (hidden tabs poll slowly)


@dataclass
class TrainView:
    job: TrainJob | None = None
    drawn: int = -1  # job.version the figures were last drawn from
    polling: bool = False  # the status fragment polls (set on each full run)
    frames: dict = field(default_factory=dict)  # (method, epoch) -> go.Frame
    cache: dict = field(default_factory=dict)   # name -> (key, value)

    def replace(self, job: TrainJob) -> TrainJob:
        """One job per session: the previous one is stopped before the next is kept."""
        if self.job is not None:
            self.job.close()
        self.job, self.drawn, self.frames, self.cache = job, -1, {}, {}
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

    def curves(self) -> go.Figure:
        snaps = self.job.snapshots
        return self.cached("curves", len(snaps), lambda: viz.curves_figure(pd.DataFrame(
            [{"epoch": s.epoch, "loss": s.loss, **s.metrics} for s in list(snaps)])))

    def map_figure(self, names: dict) -> go.Figure | None:
        """The animated map: UMAP once the newest epoch has one, PCA meanwhile."""
        method, layouts = self.job.map_view()
        if not layouts:
            return None
        epochs = _spread(sorted(layouts), MAX_FRAMES)
        meta = self.job.meta

        def build():
            for e in epochs:
                if (method, e) not in self.frames:
                    self.frames[(method, e)] = viz.map_frame(e, layouts[e], meta)
            return viz.map_figure([self.frames[(method, e)] for e in epochs],
                                  layouts[epochs[-1]], meta, names, method)

        return self.cached("map", (method, tuple(epochs)), build)

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
