"""pfml_core/viz/training.py: the map's frames keep each epoch's own view around its points,
and a click's selection (as the browser sends it) gives back the held-out rows."""
import numpy as np

from pfml_core.viz import training as viz


def test_clicked_rows_reads_every_form_the_browser_sends():
    sel = {"selection": {"points": [
        {"legendgroup": "held-out", "customdata": [42, 5]},          # plain list
        {"legendgroup": "held-out", "customdata": {"0": 7, "1": 6}},  # typed array sent as JSON
        {"legendgroup": "train", "customdata": [3, 1]},              # not a held-out point
        {"legendgroup": "held-out"},                                  # no customdata
        {"legendgroup": "held-out", "customdata": 9.0},               # a bare number
        {"legendgroup": "held-out", "customdata": {"x": 1}}]}}        # something else: ignored
    assert viz.clicked_rows(sel) == [42, 7, 9]
    assert viz.clicked_rows(sel, "train") == [3]
    assert viz.clicked_rows(None) == [] and viz.clicked_rows({}) == []


def test_each_frame_fits_its_own_points():
    meta = {"label": np.array([0, 0, 1, 1]), "group": np.array(["train"] * 4),
            "flipped": np.zeros(4, bool), "row": np.arange(4)}
    small = np.array([[0, 0], [0.01, 0.01], [0.02, 0], [0, 0.02]], np.float32)
    big = 100 * small
    f0, f1 = viz.map_frame(0, small, meta), viz.map_frame(1, big, meta)
    for f, xy in ((f0, small), (f1, big)):
        lo, hi = f.layout.xaxis.range
        assert lo < xy[:, 0].min() and hi > xy[:, 0].max()
        assert (xy[:, 0].max() - xy[:, 0].min()) / (hi - lo) > 0.8  # the points fill the view
