"""Landing page: what PFML is, the label-noise scene animating, and where to start."""
from pathlib import Path

import streamlit as st

from studio.nav import use_app_navigation

HERO = Path(__file__).resolve().parents[1] / "assets" / "hero.webp"  # written by `make assets`

use_app_navigation()  # first: see studio/nav.py
st.title("PFML Studio")
st.markdown(
    """
**Potential Field based Deep Metric Learning** (Bhatnagar & Ahuja, CVPR 2025) treats every
embedding and proxy as a charge. Points of the same class attract, others repel, and the
**attraction decays with distance** (`alpha`): a far, mislabeled sample is barely pulled,
while classical losses pull it hardest. Repulsion acts only inside the margin `delta`.
"""
)
if HERO.exists():
    st.image(str(HERO), caption="Label noise: the mislabeled points (X) stay where they are under PFML "
             "(left); the contrastive loss (right) drags them, and everything else, together.")
st.markdown(
    """
:material/school: **[Start the lesson](lesson)**: five scenes, one idea each, for a class or on your own.

- **Field playground**: watch class fields, force arrows and samples descend the energy.
- **Decay explorer**: the potentials and forces as curves, beside non-decaying ones.
- **Train a model**: PFML on MNIST-5k or your own data, with live UMAP and Recall@K.
- **Label-noise lab / Sweep**: PFML beside Proxy Anchor, ProxyNCA, Multi-Similarity, Triplet.
"""
)
st.caption("Pick a page in the sidebar. Every control is in the URL, so a link reproduces a scene.")
