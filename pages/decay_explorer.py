"""Decay explorer: PFML's attraction / repulsion potentials and force vs distance beside
non-decaying potentials, for the chosen alpha and delta and up to two more alphas overlaid
(all in the URL)."""
import streamlit as st

from pfml_core.playground import url_state as state
from pfml_core.viz import decay
from studio import cache
from studio.nav import use_app_navigation

CONTROLS = {"decay_alpha": state.BY_NAME["alpha"], "decay_delta": state.BY_NAME["delta"]}

use_app_navigation()  # first: see studio/nav.py
st.title("Decay explorer")


def url_notices() -> list[str]:
    """Notices for URL values that are malformed or out of range (the widget falls back)."""
    notices = []
    for key, c in CONTROLS.items():
        try:
            if key in st.query_params:
                state.parse_value(c, st.query_params[key])
        except ValueError as err:
            notices.append(f"URL value ignored: {err}; using the default {c.default!r}.")
    return notices


if "decay_notices" not in st.session_state:  # checked once, before the widgets read the URL
    st.session_state.decay_notices = url_notices()
for notice in st.session_state.decay_notices:
    st.warning(notice)

left, right = st.columns([1, 3])
alpha, delta = (left.slider(c.name, c.low, c.high, c.default, c.step, key=key, help=c.help,
                            bind="query-params") for key, c in CONTROLS.items())
grid = state.BY_NAME["alpha"]
more = left.multiselect("overlay more alphas (up to 2)", [grid.low + grid.step * i for i in range(
    int(round((grid.high - grid.low) / grid.step)) + 1)], default=[], max_selections=2,
    format_func=lambda a: f"{a:g}", key="decay_more", bind="query-params",
    help="PFML's curves for these alphas too, in lighter blue, to compare decays")
right.plotly_chart(cache.decay_figure(tuple(sorted({alpha, *more})), delta), key="decay_chart")
right.caption("Both potential panels use a symmetric-log axis, sign(psi) * log10(1 + |psi| / c), "
              "linear below c (named on the axis) and logarithmic beyond, so PFML's deep floor at a "
              "large alpha and the small contrastive curves stay readable side by side; the repulsion "
              "curve is cut where it leaves the top near d = 0. The tick labels are real values.")
left.markdown("\n".join(f"- {s}" for s in decay.explanation(alpha, delta)))
