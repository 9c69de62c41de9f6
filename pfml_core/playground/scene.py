"""2-D toy scenes for the field playground: a registry of seeded presets that each build
samples (with sub-populations), proxies and label noise in plain plane coordinates.
A preset is a geometry plus the control values it starts from (like a TensorFlow
Playground data set); build_scene obeys its config exactly and never overrides a value.
The descent on these scenes lives in pfml_core/playground/descent.py."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pfml_core import guards
from pfml_core.data import flip_labels

SPREAD = 0.3  # std of a cluster in plane units; delta defaults are chosen against it
RADIUS = 1.8  # class centres lie on a circle of this radius


@dataclass(frozen=True)
class SceneConfig:
    """What defines a scene; hashable, so the app can cache build_scene on it."""

    preset: str = "two_classes"
    classes: int = 2
    points_per_class: int = 20
    proxies_per_class: int = 2
    noise: float = 0.0  # fraction of sample labels flipped to another class
    seed: int = 0


@dataclass
class Scene:
    """Points (n, 2), noisy labels, true labels, flipped mask, sub-population ids,
    proxies (P, 2) and their labels; numpy arrays, float32 coordinates."""

    points: np.ndarray
    labels: np.ndarray
    true_labels: np.ndarray
    flipped: np.ndarray
    subpop: np.ndarray
    proxies: np.ndarray
    proxy_labels: np.ndarray

    @property
    def num_classes(self) -> int:
        labels = np.concatenate([self.true_labels, self.proxy_labels])
        return int(labels.max()) + 1 if labels.size else 0


SCENE_DEFAULTS = dict(classes=3, points_per_class=20, proxies_per_class=2, noise=0.0)


@dataclass(frozen=True)
class Preset:
    """A named geometry, layout(rng, classes, n) -> (points, labels, subpop), with the
    control values it starts from (`values`, over SCENE_DEFAULTS) and the ones it fixes
    (`fixed`: a config with another value is rejected, the app shows them locked)."""

    name: str
    label: str
    teaches: str
    layout: Callable
    values: dict[str, Any] = field(default_factory=dict)
    fixed: tuple[str, ...] = ()
    proxy_ring: float | None = None  # proxies start spread on a ring of this radius; None: near 0

    def start(self) -> dict[str, Any]:
        """Every scene value this preset starts from."""
        return {**SCENE_DEFAULTS, **self.values}


def _centres(classes: int, radius: float = RADIUS) -> np.ndarray:
    angles = np.pi + 2 * np.pi * np.arange(classes) / classes  # first class on the left
    return radius * np.stack([np.cos(angles), np.sin(angles)], 1)  # (C, 2)


def _ring(classes: int, m: int, radius: float) -> np.ndarray:
    """(classes * m, 2) starts evenly around a ring, the classes interleaved: a proxy heads
    for the sub-population it starts nearest, as in a k-means start; a pile of proxies near 0
    would pull each other along to one sub-population."""
    a = 2 * np.pi * (np.arange(m)[None] + (np.arange(classes)[:, None] + 0.5) / classes) / max(m, 1)
    return radius * np.stack([np.cos(a), np.sin(a)], -1).reshape(-1, 2)


def _blobs(rng, centres, n, spread):
    """n points around each centre; returns points (C*n, 2) and centre ids (C*n,)."""
    ids = np.repeat(np.arange(len(centres)), n)
    return centres[ids] + spread * rng.standard_normal((len(ids), 2)), ids


def _gaussian_layout(radius, spread):
    def layout(rng, classes, n):
        pts, ids = _blobs(rng, _centres(classes, radius), n, spread)
        return pts, ids, np.zeros_like(ids)
    return layout


def _multimodal_layout(rng, classes, n):
    """Each class in two clusters on opposite sides (sub-populations 0 and 1)."""
    centres = _centres(2 * classes, RADIUS * 1.3)  # cluster c and c + classes are opposite
    sizes = np.repeat([n - n // 2, n // 2], classes)  # (2C,) points in each cluster
    ids = np.repeat(np.arange(2 * classes), sizes)
    pts = centres[ids] + SPREAD * 0.8 * rng.standard_normal((len(ids), 2))
    return pts, ids % classes, ids // classes


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("two_classes", "Two classes (the paper's figure)",
           "Blue wells around each class, red margins around the other.",
           _gaussian_layout(RADIUS * 0.7, SPREAD), values=dict(classes=2), fixed=("classes",)),
    Preset("large_variation", "Large intra-class variation",
           "A class in separated clusters: the decayed pull keeps sub-populations apart.",
           _multimodal_layout, proxy_ring=RADIUS * 0.65),
    Preset("label_noise", "Label noise",
           "Far mislabeled points (X) feel a weak, decayed pull and are left alone.",
           _gaussian_layout(RADIUS, SPREAD * 0.8), values=dict(noise=0.1)),
    Preset("tight_margin", "Tight margin",
           "Classes touch: repulsion acts only inside delta and opens a margin.",
           _gaussian_layout(RADIUS * 0.35, SPREAD)),
    Preset("proxies_only", "Proxies only",
           "Only proxies: they attract their own class and repel the others.",
           _gaussian_layout(RADIUS, SPREAD), values=dict(points_per_class=0, proxies_per_class=3),
           fixed=("points_per_class", "noise")),
]}


def check_config(cfg: SceneConfig) -> SceneConfig:
    """Validate a SceneConfig; ValueError names the bad field."""
    guards.check_choice("preset", cfg.preset, PRESETS)
    guards.check_int("classes", cfg.classes, 2, 5)
    guards.check_int("points_per_class", cfg.points_per_class, 0, 100)
    guards.check_int("proxies_per_class", cfg.proxies_per_class, 0, 10)
    guards.check_range("noise", cfg.noise, 0.0, 0.5)
    guards.check_int("seed", cfg.seed, 0)
    preset = PRESETS[cfg.preset]
    for name in preset.fixed:
        want = preset.start()[name]
        if getattr(cfg, name) != want:
            raise ValueError(f"{name} must be {want} in the {cfg.preset} scene, got {getattr(cfg, name)!r}")
    if cfg.points_per_class + cfg.proxies_per_class == 0:
        raise ValueError("the scene needs points: points_per_class and proxies_per_class are both 0")
    return cfg


def preset_config(preset: str, **changes) -> SceneConfig:
    """The SceneConfig a preset starts from, with `changes` on top."""
    guards.check_choice("preset", preset, PRESETS)
    return SceneConfig(preset=preset, **{**PRESETS[preset].start(), **changes})


def build_scene(cfg: SceneConfig) -> Scene:
    """The scene of a config, exactly as configured: same config and seed -> identical
    arrays. A value the preset fixes must match it (ValueError otherwise)."""
    check_config(cfg)
    rng = np.random.default_rng(cfg.seed)
    pts, true, sub = PRESETS[cfg.preset].layout(rng, cfg.classes, cfg.points_per_class)
    labels, flipped = flip_labels(true, cfg.noise, rng, cfg.classes)  # draws from rng
    m = cfg.proxies_per_class
    proxies = 0.6 * rng.standard_normal((cfg.classes * m, 2))  # random init, as in training
    if PRESETS[cfg.preset].proxy_ring is not None:
        proxies = 0.1 * proxies + _ring(cfg.classes, m, PRESETS[cfg.preset].proxy_ring)
    return Scene(points=pts.astype(np.float32).reshape(-1, 2), labels=labels,
                 true_labels=true.astype(np.int64), flipped=flipped, subpop=sub.astype(np.int64),
                 proxies=proxies.astype(np.float32).reshape(-1, 2),
                 proxy_labels=np.repeat(np.arange(cfg.classes), m).astype(np.int64))
