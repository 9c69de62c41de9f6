"""The playground's state as ONE declarative table of controls (name, type, default, range,
help). It parses URL query strings into typed values, falling back to the default with a
notice for any bad value, and serialises back, so a link reproduces a scene (seed included).
Pure Python: the page binds each control to a widget keyed PREFIX + name."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from pfml_core.playground.descent import Dynamics
from pfml_core.playground.scene import PRESETS, SceneConfig

PREFIX = "pg_"  # URL / session-state key prefix of the playground
HIDE = "hide"  # URL option: comma-separated control names to hide (classroom mode)


@dataclass(frozen=True)
class Control:
    """One control: kind is "int", "float", "choice" or "bool"."""

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    step: float | None = None
    help: str = ""

    @property
    def key(self) -> str:
        return PREFIX + self.name


CONTROLS: tuple[Control, ...] = (
    Control("preset", "choice", "two_classes", choices=tuple(PRESETS), help="Scene preset"),
    Control("classes", "int", 3, 2, 5, help="Number of classes"),
    Control("points_per_class", "int", 20, 5, 60, help="Samples per class"),
    Control("proxies_per_class", "int", 2, 0, 10, help="Proxies (stars) per class, M"),
    Control("noise", "float", 0.0, 0.0, 0.5, step=0.05, help="Fraction of labels flipped"),
    Control("seed", "int", 0, 0, 9999, help="Random seed of the scene"),
    Control("alpha", "float", 3.0, 0.5, 6.0, step=0.5,
            help="Decay exponent: larger = attraction fades faster with distance"),
    Control("delta", "float", 0.3, 0.05, 1.0, step=0.05,
            help="Radius: no attraction force inside it"),
    Control("delta_rep", "float", 0.0, 0.0, 1.0, step=0.05,
            help="Repulsion radius (margin); 0 = same as delta"),
    Control("step_size", "float", 0.002, 0.0005, 0.02, step=0.0005,
            help="Gradient step on the total energy"),
    Control("field_class", "int", 0, 0, 4, help="Whose class field Psi_j is drawn"),
    Control("compare", "bool", False, help="Side by side with a non-decaying potential"),
    Control("compare_potential", "choice", "contrastive", choices=("contrastive", "linear"),
            help="The non-decaying potential of compare mode"),
)
BY_NAME = {c.name: c for c in CONTROLS}


def defaults() -> dict[str, Any]:
    return {c.name: c.default for c in CONTROLS}


def parse_value(control: Control, raw: str) -> Any:
    """Typed value of one URL string; ValueError says why it is not allowed."""
    if control.kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"{control.name} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if control.kind == "choice":
        if raw not in control.choices:
            raise ValueError(f"{control.name} must be one of {list(control.choices)}, got {raw!r}")
        return raw
    try:
        value = int(raw) if control.kind == "int" else float(raw)
    except ValueError:
        raise ValueError(f"{control.name} must be a{'n integer' if control.kind == 'int' else ' number'}"
                         f", got {raw!r}") from None
    if not (math.isfinite(value) and control.low <= value <= control.high):
        raise ValueError(f"{control.name} must be in [{control.low}, {control.high}], got {raw!r}")
    return value


def _last(raw) -> str:
    return raw[-1] if isinstance(raw, (list, tuple)) and raw else str(raw)


def parse(query: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """(values, hidden control names, notices) from URL params keyed PREFIX + name.
    Missing keys take the default silently; bad ones take it with a notice."""
    values, notices = defaults(), []
    for control in CONTROLS:
        if control.key in query:
            try:
                values[control.name] = parse_value(control, _last(query[control.key]))
            except ValueError as err:
                notices.append(f"URL value ignored: {err}; using the default {control.default!r}.")
    hidden = []
    if PREFIX + HIDE in query:
        for name in filter(None, _last(query[PREFIX + HIDE]).split(",")):
            if name.strip() in BY_NAME:
                hidden.append(name.strip())
            else:
                notices.append(f"URL option hide: unknown control {name!r} ignored.")
    return values, hidden, notices


def format_value(control: Control, value: Any) -> str:
    if control.kind == "bool":
        return "true" if value else "false"
    if control.kind == "float":
        return repr(round(float(value), 10))
    return str(value)


def to_query(values: Mapping[str, Any], hidden: list[str] = (), all_values: bool = False) -> dict[str, str]:
    """URL params (PREFIX + name -> string) for the values that differ from the default
    (all of them with all_values=True), plus the hide option."""
    query = {c.key: format_value(c, values[c.name]) for c in CONTROLS
             if c.name in values and (all_values or values[c.name] != c.default)}
    if hidden:
        query[PREFIX + HIDE] = ",".join(hidden)
    return query


def scene_config(values: Mapping[str, Any]):
    """The SceneConfig of parsed values."""
    return SceneConfig(preset=values["preset"], classes=int(values["classes"]),
                       points_per_class=int(values["points_per_class"]),
                       proxies_per_class=int(values["proxies_per_class"]),
                       noise=float(values["noise"]), seed=int(values["seed"]))


def dynamics(values: Mapping[str, Any], potential: str = "pfml"):
    """The descent Dynamics of parsed values under the given potential."""
    return Dynamics(alpha=float(values["alpha"]), delta=float(values["delta"]),
                    delta_rep=float(values["delta_rep"]) or None, potential=potential,
                    step_size=float(values["step_size"]))
