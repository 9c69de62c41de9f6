"""Label-noise lab: losses x noise rates x seeds trained in a background worker; measured
R@1/R@2 vs noise beside the paper's 20%-noise table, plus where flipped samples ended."""
import streamlit as st

from pfml_core import lab
from pfml_core.viz import lab as viz
from studio import cache, lab_panel
from studio.nav import use_app_navigation

use_app_navigation()  # first: see studio/nav.py
st.title("Label-noise lab")
st.caption("The paper's strongest claim: at 20% flipped labels PFML beats Proxy Anchor by "
           f"+{lab.noise_gain()['CUB']} (CUB) / +{lab.noise_gain()['Cars']} (Cars) R@1. "
           "Check it on your data. Grids run in a background worker and are kept in the run store.")
labels = cache.lab_loss_labels()

with st.form("noise_form"):
    c1, c2, c3 = st.columns(3)
    data = c1.selectbox("Data", ["mnist5k", "digits"], key="noise_data")
    path = c1.text_input("…or a dataset path (folder, .zip, .npz, .csv)", key="noise_path")
    losses = c2.multiselect("Losses", list(labels), ["pfml", "proxy_anchor"],
                            format_func=labels.get, key="noise_losses")
    rates = c2.multiselect("Noise rates (%)", [0, 5, 10, 20, 30, 40], [0, 20], key="noise_rates")
    seeds = c3.text_input("Seeds", "0,1,2", key="noise_seeds")
    epochs = c3.number_input("Epochs", 1, 500, 5, key="noise_epochs")
    batches = c3.number_input("Batches per epoch (0 = all)", 0, 10_000, 0, key="noise_batches")
    go = st.form_submit_button("Run grid", type="primary")
if go:
    lab_panel.launch("noise", lambda: lab.noise_grid(
        path.strip() or data, losses, [r / 100 for r in rates],
        lab.parse_list("seeds", seeds, int),
        base={"epochs": int(epochs), "max_batches_per_epoch": int(batches) or None}), "noise_grid")


def results(grid: dict, frame) -> None:
    """The picked grid's charts and tables (redrawn by lab_panel while it runs)."""
    agg = lab.aggregate(frame, ["loss", "noise"], lab.REPORTED)
    c1, c2 = st.columns(2)
    c1.plotly_chart(viz.noise_figure(agg, "R@1", labels), key="noise_r1")
    c2.plotly_chart(viz.noise_figure(agg, "R@2", labels), key="noise_r2")
    gain = lab.gain(agg)
    if len(gain):
        st.markdown("**Measured PFML − Proxy Anchor (R@1):** " + ", ".join(
            f"{n:.0%} noise: {g:+.3f}" for n, g in zip(gain["noise"], gain["gain"])))
    c3, c4 = st.columns(2)
    c3.plotly_chart(viz.noise_figure(agg, "flip_ratio", labels), key="noise_flip")
    c4.plotly_chart(viz.noise_figure(agg, "W2", labels), key="noise_w2")
    st.caption("flip_ratio: flipped samples' distance to their labelled (wrong) class centroid "
               "over that to their true class (> 1: they stayed with their true class). "
               "W2: proxy-to-data Wasserstein-2 distance (proxy losses only).")
    st.dataframe(agg, key="noise_agg_table")
    with st.expander("Every run"):
        st.dataframe(frame, key="noise_runs_table")


lab_panel.results_panel("noise", "noise_grid", results)
st.subheader("Paper: 20% label noise, ResNet-50 (mean of 5 runs)")
p1, p2 = st.columns(2)
p1.plotly_chart(viz.paper_noise_figure(), key="noise_paper_fig")
p2.dataframe(cache.lab_paper_noise_table(), key="noise_paper_table")
