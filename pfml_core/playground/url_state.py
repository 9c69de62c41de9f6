"""The playground's state as ONE declarative table of controls (name, type, default, range,
label in words with units, help). It parses URL query strings into typed values, falling
back with a notice for any bad value, and serialises back, so a link reproduces a scene
(seed included). A preset in the URL stands for its starting values (scene.Preset); the
URL only spells out values that differ from them. Notices quote URL text inside a code span,
so Markdown in a hostile link is shown as text, never rendered. Pure Python: the page
binds each control to a widget keyed PREFIX + name."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pfml_core.playground.descent import Dynamics
from pfml_core.playground.scene import PRESETS, SceneConfig

PREFIX = "pg_"  # URL / session-state key prefix of the playground
HIDE = "hide"  # URL option: comma-separated control names to hide (classroom mode)
DEFAULT_PRESET = "two_classes"


@dataclass(frozen=True)
class Control:
    """One control: kind is "int", "float", "choice" or "bool"; `label` is what a person
    reads next to the widget, `fmt` how its number is shown (printf style)."""

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    step: float | None = None
    help: str = ""
    label: str = ""
    fmt: str | None = None

    @property
    def key(self) -> str:
        return PREFIX + self.name


_SCENE0 = PRESETS[DEFAULT_PRESET].start()
CONTROLS: tuple[Control, ...] = (
    Control("preset", "choice", DEFAULT_PRESET, choices=tuple(PRESETS), label="scene",
            help="A starting scene: choosing one sets the scene controls below to its values"),
    Control("classes", "int", _SCENE0["classes"], 2, 5, label="classes", help="Number of classes"),
    Control("points_per_class", "int", _SCENE0["points_per_class"], 0, 60, label="points per class",
            help="Samples (dots) per class"),
    Control("proxies_per_class", "int", _SCENE0["proxies_per_class"], 0, 10,
            label="proxies per class (M)", help="Trainable proxies (stars) per class"),
    Control("noise", "float", _SCENE0["noise"], 0.0, 0.5, step=0.05, fmt="%.2f",
            label="label noise (fraction flipped)", help="Fraction of sample labels flipped (X)"),
    Control("seed", "int", 0, 0, 9999, label="random seed", help="Seed of the scene: same seed, same scene"),
    Control("alpha", "float", 3.0, 0.5, 6.0, step=0.5, fmt="%.1f", label="decay alpha (exponent)",
            help="Attraction beyond delta pulls with alpha / d^(alpha+1): larger = fades faster"),
    Control("delta", "float", 0.3, 0.05, 1.0, step=0.05, fmt="%.2f", label="margin delta (plane units)",
            help="Radius: no attraction force inside it (no collapse)"),
    Control("separate_rep", "bool", False, label="separate repulsion margin",
            help="Off: the repulsion margin equals delta (the paper's setting)"),
    Control("delta_rep", "float", 0.3, 0.05, 1.0, step=0.05, fmt="%.2f",
            label="repulsion margin delta_rep (plane units)",
            help="Repulsion acts only inside it; the paper's ablation finds larger than delta hurts"),
    Control("step_size", "float", 0.002, 0.0005, 0.02, step=0.0005, fmt="%.4f",
            label="step size (times -dU/dx)", help="Gradient step on the total energy U (Eq. 6)"),
    Control("steps", "int", 120, 20, 400, step=20, label="descent steps computed",
            help="How many steps the server computes for the browser to play"),
    Control("move_samples", "bool", True, label="samples move",
            help="Off: samples stay put (a trained network) and only the proxies descend"),
    Control("field_class", "int", 0, 0, 4, label="field of class",
            help="Whose class field Psi_j is drawn (0 = the first class)"),
    Control("fixed_scale", "bool", False, label="fixed colour scale",
            help="On: a colour means the same potential in every setting (compare settings); "
                 "off: the scale fits this scene's step 0"),
    Control("compare", "bool", False, label="compare with a non-decaying loss",
            help="The same scene side by side under a non-decaying potential"),
    Control("compare_potential", "choice", "contrastive", choices=("contrastive", "linear"),
            label="non-decaying loss", help="contrastive: pull 2d; linear: constant pull 1"),
)
BY_NAME = {c.name: c for c in CONTROLS}
SCENE_CONTROLS = tuple(_SCENE0)  # the controls a preset sets


def shown(raw: Any, limit: int = 60) -> str:
    """User text as an inert Markdown code span: never a link, never formatting."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(raw)).replace("`", "'")
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"`{text}`" if text.strip() else "(empty)"


def defaults() -> dict[str, Any]:
    return {c.name: c.default for c in CONTROLS}


def baseline(preset: str) -> dict[str, Any]:
    """Every control's value before the URL speaks: the table's defaults with the preset and
    its starting values on top (an unknown preset: the default one)."""
    preset = preset if preset in PRESETS else DEFAULT_PRESET
    return {**defaults(), **PRESETS[preset].start(), "preset": preset}


def parse_value(control: Control, raw: str) -> Any:
    """Typed value of one URL string; ValueError says why it is not allowed."""
    if control.kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"{control.name} must be true or false, got {shown(raw)}")
        return raw.lower() == "true"
    if control.kind == "choice":
        if raw not in control.choices:
            raise ValueError(f"{control.name} must be one of {', '.join(control.choices)}, got {shown(raw)}")
        return raw
    try:
        value = int(raw) if control.kind == "int" else float(raw)
    except ValueError:
        raise ValueError(f"{control.name} must be a{'n integer' if control.kind == 'int' else ' number'}"
                         f", got {shown(raw)}") from None
    if not (math.isfinite(value) and control.low <= value <= control.high):
        raise ValueError(f"{control.name} must be in [{control.low}, {control.high}], got {shown(raw)}")
    return value


def _last(raw) -> str:
    return raw[-1] if isinstance(raw, (list, tuple)) and raw else str(raw)


def parse(query: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """(values, hidden control names, notices) from URL params keyed PREFIX + name.
    Missing keys take the preset's (or the table's) value silently; bad ones take it with
    a notice; so do values the preset fixes and a field class the scene does not have."""
    notices: list[str] = []

    def read(control: Control, fallback: Any) -> Any:
        if control.key not in query:
            return fallback
        raw = query[control.key]
        if isinstance(raw, (list, tuple)) and len(raw) > 1:  # ?pg_alpha=2.5&pg_alpha=4
            notices.append(f"URL key {control.key} is given {len(raw)} times; using the last, "
                           f"{shown(raw[-1])}.")
        try:
            return parse_value(control, _last(raw))
        except ValueError as err:
            notices.append(f"URL value ignored: {err}; using {format_value(control, fallback)}.")
            return fallback

    preset = read(BY_NAME["preset"], DEFAULT_PRESET)
    base = baseline(preset)
    values = {c.name: preset if c.name == "preset" else read(c, base[c.name]) for c in CONTROLS}
    for name in PRESETS[preset].fixed:
        if values[name] != base[name]:
            notices.append(f"URL value ignored: the {preset} scene always has {name} = "
                           f"{format_value(BY_NAME[name], base[name])}, got {shown(values[name])}.")
            values[name] = base[name]
    if values["field_class"] >= values["classes"]:
        notices.append(f"URL value ignored: field_class {values['field_class']} does not exist with "
                       f"{values['classes']} classes; showing class {values['classes'] - 1}.")
        values["field_class"] = values["classes"] - 1
    hidden = []
    for name in filter(None, _last(query.get(PREFIX + HIDE, "")).split(",")):
        if name.strip() in BY_NAME:
            hidden.append(name.strip())
        else:
            notices.append(f"URL option hide: unknown control {shown(name)} ignored.")
    return values, hidden, notices


def format_value(control: Control, value: Any) -> str:
    if control.kind == "bool":
        return "true" if value else "false"
    if control.kind == "float":
        return repr(round(float(value), 10))
    return str(value)


def to_query(values: Mapping[str, Any], hidden: list[str] = (), all_values: bool = False) -> dict[str, str]:
    """URL params (PREFIX + name -> string) for the values that differ from the baseline of
    their preset (all of them with all_values=True), plus the hide option."""
    base = dict(baseline(values.get("preset", DEFAULT_PRESET)), preset=DEFAULT_PRESET)
    query = {c.key: format_value(c, values[c.name]) for c in CONTROLS
             if c.name in values and (all_values or values[c.name] != base[c.name])}
    if hidden:
        query[PREFIX + HIDE] = ",".join(hidden)
    return query


def scene_config(values: Mapping[str, Any]) -> SceneConfig:
    """The SceneConfig of parsed values."""
    return SceneConfig(preset=values["preset"], classes=int(values["classes"]),
                       points_per_class=int(values["points_per_class"]),
                       proxies_per_class=int(values["proxies_per_class"]),
                       noise=float(values["noise"]), seed=int(values["seed"]))


def dynamics(values: Mapping[str, Any], potential: str = "pfml") -> Dynamics:
    """The descent Dynamics of parsed values under the given potential; the repulsion
    margin is delta unless separate_rep is on."""
    rep = float(values["delta_rep"]) if values.get("separate_rep") else None
    return Dynamics(alpha=float(values["alpha"]), delta=float(values["delta"]), delta_rep=rep,
                    potential=potential, step_size=float(values["step_size"]),
                    move_samples=bool(values.get("move_samples", True)))
