"""The one app-side caching module: st.cache_data for pure functions of a hashable
config, st.cache_resource only for read-only shared objects. Never cache side effects."""
from __future__ import annotations

import streamlit as st  # noqa: F401  (used by the sections below)

# --- playground ---
from pfml_core import playground as _playground  # noqa: E402
from pfml_core.viz import decay as _decay  # noqa: E402
from pfml_core.viz import field as _field  # noqa: E402

PG_CHUNK = 20  # descent steps per cached chunk of a recorded descent


@st.cache_data(max_entries=64, show_spinner=False)
def pg_scene(cfg: _playground.SceneConfig) -> _playground.Scene:
    """The seeded scene of a (frozen, hashable) SceneConfig."""
    return _playground.build_scene(cfg)


@st.cache_data(max_entries=256, show_spinner=False)  # a chunk of 20 steps is about 0.15 MB
def pg_chunk(cfg: _playground.SceneConfig, dyn: _playground.Dynamics, cls: int, k: int) -> _playground.Movie:
    """Chunk k of the recorded descent: k = 0 is step 0 alone; chunk k >= 1 holds the
    PG_CHUNK steps after chunk k - 1, recorded from its last frame (so a longer run, or the
    same run after a rerun, reuses every chunk already computed)."""
    scene = pg_scene(cfg)
    view = _playground.descent.bounds(scene)
    if k == 0:
        return _playground.movie.record(scene, dyn, cls, view, 0)
    prev = pg_chunk(cfg, dyn, cls, k - 1)
    return _playground.movie.record(scene, dyn, cls, view, PG_CHUNK, start=prev.frame(-1),
                                    reference=prev.reference)


def pg_movie(cfg, dyn, cls: int, steps: int) -> _playground.Movie:
    """Steps 0..steps (rounded up to whole chunks) of the descent, joined from cached chunks."""
    chunks = -(-int(steps) // PG_CHUNK)
    return _playground.movie.join([pg_chunk(cfg, dyn, cls, k) for k in range(chunks + 1)])


def pg_panel_label(dyn: _playground.Dynamics) -> str:
    return "PFML (decaying)" if dyn.potential == "pfml" else f"{dyn.potential} (non-decaying)"


@st.cache_resource(max_entries=16, show_spinner=False)
def pg_figure(cfg: _playground.SceneConfig, dyns: tuple, cls: int, steps: int, fixed_scale: bool = False):
    """The animated playground figure of a scene under each Dynamics (one panel each; one
    colour scale, fieldmap.FIXED_LIMITS with fixed_scale).
    A read-only shared object: st.plotly_chart serialises a copy and nothing mutates it;
    building its Plotly frames costs far more than the cache lookup."""
    movies = {pg_panel_label(d): pg_movie(cfg, d, cls, steps) for d in dyns}
    return _field.play_figure(pg_scene(cfg), movies, fixed_scale=fixed_scale)


@st.cache_resource(max_entries=16, show_spinner=False)
def pg_energy_figure(cfg: _playground.SceneConfig, dyns: tuple, cls: int, steps: int):
    """The energy curve of each Dynamics over the computed steps (read-only, shared)."""
    return _field.energy_figure({pg_panel_label(d): pg_movie(cfg, d, cls, steps) for d in dyns})


@st.cache_data(max_entries=64, show_spinner=False)
def decay_figure(alphas: tuple, delta: float):
    """The decay explorer's three-panel figure, one PFML curve per alpha in `alphas`."""
    return _decay.decay_figure(alphas, delta)


# --- training ---


@st.cache_resource(show_spinner=False)
def train_map_service():
    """The server's one UMAP worker process (eval.MapService), started and warmed up (numba
    compiles once) when the train page first opens. Sessions share it: it only draws maps."""
    from pfml_core.eval import MapService

    return MapService().start()


@st.cache_data(show_spinner=False)
def train_device(device: str) -> str:
    """Where a run with this device setting trains: 'GPU: <name>' or 'CPU, N threads'."""
    from pfml_core.training import TrainConfig, TrainJob

    return TrainJob.device_for(TrainConfig(device=device))


@st.cache_resource(max_entries=4, show_spinner=False)
def train_dataset(name_or_path: str):
    """A dataset for showing neighbour images (read-only, shared between sessions)."""
    from pfml_core.data import load_dataset

    return load_dataset(name_or_path)


# --- noise lab ---
@st.cache_data
def lab_loss_labels() -> dict[str, str]:
    """LOSSES name -> display label (static registry)."""
    from pfml_core.training import LOSSES
    return {k: v.label for k, v in LOSSES.items()}


@st.cache_data
def lab_paper_noise_table():
    """The paper's 20%-noise table (docs/method.md, section 6)."""
    from pfml_core.lab import noise_table
    return noise_table()
