"""The guided lesson: five playground scenes, each with two or three sentences, that walk a
class through PFML's ideas (docs/method.md, section 1). A scene is a set of playground
control values, so the lesson draws it with the playground's own descent and figure, and
"open in the playground" is an ordinary playground URL. Scenes are numbered from 1 in URLs
(`?scene=3`)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pfml_core.playground import url_state

PARAM = "scene"  # the lesson's URL parameter


@dataclass(frozen=True)
class LessonScene:
    """One scene: a title, its sentences and the playground values it differs in."""

    title: str
    text: str
    values: dict[str, Any] = field(default_factory=dict)

    def playground_values(self) -> dict[str, Any]:
        """Every playground control's value in this scene; colours on the fixed scale, so
        the same colour means the same potential from scene to scene."""
        base = url_state.baseline(self.values.get("preset", url_state.DEFAULT_PRESET))
        return {**base, "fixed_scale": True, **self.values}


SCENES: tuple[LessonScene, ...] = (
    LessonScene(
        "Attraction fades with distance",
        "Every sample and proxy (star) is a source. The blue well of class 0 is deepest among its "
        "own points and fades with distance: beyond delta a point pulls with alpha / d^(alpha+1), "
        "so with alpha = 2 a point twice as far pulls eight times less. Press Play: the arrows "
        "shrink as the class gathers, and stop once its points are within delta of each other.",
        dict(preset="two_classes", points_per_class=12, proxies_per_class=1, alpha=2.0, delta=0.6,
             seed=1, steps=60)),
    LessonScene(
        "Flat inside delta: no collapse",
        "Inside delta the attraction is a flat floor, so classmates that are already close exert "
        "no force. With delta 0.8 the PFML class (left) stays a cloud; the contrastive loss "
        "(right) pulls with 2d and squeezes each class to a single point.",
        dict(preset="two_classes", points_per_class=15, proxies_per_class=1, delta=0.8,
             compare=True, compare_potential="contrastive", steps=120)),
    LessonScene(
        "The repulsion margin",
        "Each point of another class sits in a red disc of radius delta_rep (here equal to delta; "
        "the discs of a cluster merge into one red patch): only inside it does that point push, and "
        "beyond it repulsion is constant and exerts no force. The touching classes (no proxies "
        "here) gather and push apart until no point sits in another class's red disc, and then "
        "they stop.",
        dict(preset="tight_margin", proxies_per_class=0, steps=60)),
    LessonScene(
        "A far mislabeled sample is left alone",
        "The X points carry a wrong label and sit deep inside another class (no proxies here). PFML "
        "(left) pulls them toward their labelled class only with its faded far pull, so they stay. "
        "The contrastive loss (right) pulls hardest on the farthest points and drags them across "
        "the plane.",
        dict(preset="label_noise", proxies_per_class=0, compare=True, compare_potential="contrastive",
             steps=120)),
    LessonScene(
        "Proxies settle on the data",
        "Here the samples are held still, as if the network were trained, and only the proxies "
        "(stars, starting on a ring) move. Under PFML each proxy is pulled hardest by the samples "
        "nearest to it, so the two proxies of a class land on its two different sub-populations. "
        "Under the contrastive loss every sample pulls every proxy alike, and all of them meet at "
        "the class mean, in the empty centre between the sub-populations.",
        dict(preset="large_variation", classes=2, proxies_per_class=2, move_samples=False, delta=0.6,
             compare=True, compare_potential="contrastive", steps=120)),  # delta 0.6 spans a
    # sub-population: a proxy inside it feels no pull and stops, where 0.3 sets it hopping
)


def pick(query: Mapping[str, Any]) -> tuple[int, str | None]:
    """(0-based scene index, notice or None) from URL params: `scene` counts from 1; a bad
    value falls back to the first scene with a notice."""
    raw = query.get(PARAM)
    if raw is None:
        return 0, None
    raw = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw
    try:
        number = int(str(raw))
    except ValueError:
        number = 0
    if 1 <= number <= len(SCENES):
        return number - 1, None
    return 0, (f"URL value ignored: scene must be a whole number from 1 to {len(SCENES)}, "
               f"got {url_state.shown(raw)}; showing scene 1.")
