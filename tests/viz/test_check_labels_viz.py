"""The check's map (pfml_core.viz.check_map): the ringed trace holds exactly the top-ranked
rows with the file's row ids, names shown as text; and the training map's title follows the
epoch the slider shows (each frame carries its own)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pfml_core.viz import check_map
from pfml_core.viz import training as viz


def test_ringed_trace_holds_the_top_rows_with_their_hover():
    frame = pd.DataFrame({"row": ["a/<b>x.png", "a/y.png", "b/z.png", "b/w.png"],
                          "given_label": ["a", "a", "b", "b"],
                          "suggested_label": ["b", "a", "b", "a"],
                          "score": [0.3, -0.2, -0.1, 0.1], "rank": [1, 4, 3, 2]})
    fig = check_map.check_map(np.arange(8.0).reshape(4, 2), frame, 2, "t")
    ring = next(t for t in fig.data if t.name.startswith("suspects"))
    assert ring.name == "suspects (top 2)"
    assert [c[0] for c in ring.customdata] == ["a/&lt;b&gt;x.png", "b/w.png"]
    assert [c[3] for c in ring.customdata] == ["0.300", "0.100"]
    assert "given %{customdata[1]}" in ring.hovertemplate
    assert sum(len(t.x) for t in fig.data if t.name.startswith("given")) == 4


def test_map_title_follows_each_frame():
    meta = {"label": np.array([0, 0, 1]), "group": np.array(["train", "train", "held-out"]),
            "flipped": np.array([False, False, False]), "row": np.array([0, 1, 2])}
    layouts = {e: np.random.default_rng(e).normal(size=(3, 2)) for e in (0, 4, 8)}
    fig = viz.embedding_map_figure(layouts, meta, {"train": ["a"], "held-out": ["a", "b"]}, "PCA")
    assert [f.layout.title.text for f in fig.frames] == [
        f"PCA of embeddings and proxies · epoch {e}" for e in (0, 4, 8)]
    assert fig.layout.title.text.endswith("epoch 8")


def test_map_hover_names_the_datas_own_row_or_image_path():
    meta = {"label": np.array([0, 0, 0, 1]), "group": np.array(["train", "train", "proxy", "held-out"]),
            "flipped": np.zeros(4, bool), "row": np.array([0, 1, 0, 0]),
            "source": np.array([10, 12, -1, 7])}
    names = {"train": ["a"], "held-out": ["a", "b"]}
    fig = viz.embedding_map_figure({0: np.zeros((4, 2))}, meta, names, "PCA")
    train = next(t for t in fig.data if t.name == "train a")
    assert list(train.text) == ["10", "12"]  # the file's rows, not 0, 1
    assert "row %{text}" in train.hovertemplate
    held = next(t for t in fig.data if t.name == "held-out b")
    assert int(held.customdata[0][0]) == 0 and list(held.text) == ["7 (query #0)"]
    paths = [f"cls/{i}.png" for i in range(13)]
    paths[12] = "cls/<i>x.png"
    fig = viz.map_figure([viz.map_frame(0, np.zeros((4, 2)), meta)], np.zeros((4, 2)), meta,
                         names, "PCA", paths)
    train = next(t for t in fig.data if t.name == "train a")
    assert list(train.text) == ["cls/10.png", "cls/&lt;i&gt;x.png"]


def test_a_click_on_the_map_names_the_data_sets_index():
    """customdata[4] carries each point's index in the data set, so a click can show its
    image; the browser sends customdata as a list, or as an object for typed arrays."""
    frame = pd.DataFrame({"row": ["x.png", "y.png", "z.png"], "given_label": ["a", "b", "b"],
                          "suggested_label": ["a", "a", "b"], "score": [-0.2, 0.4, -0.1],
                          "rank": [3, 1, 2], "index": [7, 11, 5]})
    fig = check_map.check_map(np.arange(6.0).reshape(3, 2), frame, 1, "t")
    ring = next(t for t in fig.data if t.name.startswith("suspects"))
    assert [c[4] for c in ring.customdata] == ["11"]
    point = {"customdata": list(ring.customdata[0]), "legendgroup": ""}
    assert check_map.clicked_index({"selection": {"points": [point]}}) == 11
    typed = {"customdata": {str(k): v for k, v in enumerate(ring.customdata[0])}}
    assert check_map.clicked_index({"selection": {"points": [typed]}}) == 11
    assert check_map.clicked_index({"selection": {"points": []}}) is None
    assert check_map.clicked_index(None) is None
    assert check_map.thumbnail(np.full((1, 4, 4), 0.5)).shape == (4, 4, 3)


def _tiles(sp: dict) -> np.ndarray:
    """The sprite's PNG decoded (Pillow) and cut back into its (n, h, w, 3) tiles."""
    import base64
    import io

    from PIL import Image

    assert sp["src"].startswith("data:image/png;base64,")
    grid = np.asarray(Image.open(io.BytesIO(base64.b64decode(sp["src"].split(",", 1)[1])))
                      .convert("RGB"))
    (h, w), cols = sp["tile"], sp["cols"]
    assert grid.shape == (-(-sp["n"] // cols) * h, cols * w, 3)
    return np.stack([grid[i // cols * h:(i // cols + 1) * h, i % cols * w:(i % cols + 1) * w]
                     for i in range(sp["n"])])


def test_the_sprite_holds_each_image_as_its_tile():
    """Hover thumbnails: tile i of the sprite is image i, pixel for pixel, grey or colour."""
    rng = np.random.default_rng(0)
    for images in (rng.random((11, 1, 8, 8)), rng.random((5, 3, 6, 6))):
        sp = check_map.sprite(images.astype(np.float32))
        assert sp["n"] == len(images) and sp["tile"] == [images.shape[2], images.shape[3]]
        assert sp["cols"] == 4 if len(images) == 11 else sp["cols"] == 3
        tiles = _tiles(sp)
        for i, img in enumerate(images):
            assert np.array_equal(tiles[i], check_map._rgb(img)), i
        assert not np.array_equal(tiles[1], tiles[2])


def test_the_sprite_is_bounded():
    """Big images are shrunk to 32 px a side (each tile the mean of its 2x2 blocks); many
    images share 2048 x 2048 pixels; MNIST-sized data keeps its 28 x 28."""
    rng = np.random.default_rng(1)
    big = rng.random((3, 3, 64, 64)).astype(np.float32)
    sp = check_map.sprite(big)
    assert sp["tile"] == [32, 32]
    tiles = _tiles(sp).astype(float)
    for i, img in enumerate(big):
        blocks = check_map._rgb(img).astype(float).reshape(32, 2, 32, 2, 3).mean((1, 3))
        assert np.abs(tiles[i] - blocks).max() <= 1
    many = np.zeros((20_000, 1, 28, 28), np.float32)
    sp = check_map.sprite(many)
    assert sp["tile"] == [14, 14] and sp["cols"] * 14 <= 2048 + 14
    assert check_map.sprite(np.zeros((5000, 1, 28, 28), np.float32))["tile"] == [28, 28]
