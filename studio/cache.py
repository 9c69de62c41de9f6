"""The one app-side caching module: st.cache_data for pure functions of a hashable
config, st.cache_resource only for read-only shared objects. Never cache side effects."""
from __future__ import annotations

import streamlit as st  # noqa: F401  (used by the sections below)

# --- playground ---

# --- training ---

# --- noise lab ---
