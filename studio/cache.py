"""The one app-side caching module: st.cache_data for pure functions of a hashable
config, st.cache_resource only for read-only shared objects. Never cache side effects."""
from __future__ import annotations

import streamlit as st  # noqa: F401  (used by the sections below)

# --- playground ---
from pfml_core import playground as _playground  # noqa: E402
from pfml_core.viz import decay as _decay  # noqa: E402


@st.cache_data(max_entries=64, show_spinner=False)
def pg_scene(cfg: _playground.SceneConfig) -> _playground.Scene:
    """The seeded scene of a (frozen, hashable) SceneConfig."""
    return _playground.build_scene(cfg)


@st.cache_data(max_entries=64, show_spinner=False)
def decay_figure(alpha: float, delta: float):
    """The decay explorer's three-panel figure."""
    return _decay.decay_figure(alpha, delta)


# --- training ---


@st.cache_resource(show_spinner=False)
def train_umap_warm_up():
    """Compile UMAP's numba kernels once per server process, in the background."""
    import threading

    from pfml_core.eval import warm_up

    thread = threading.Thread(target=warm_up, daemon=True, name="umap-warm-up")
    thread.start()
    return thread


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
