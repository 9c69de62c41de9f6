"""A recorded descent: everything the browser needs to play a scene without asking the
server again. One Movie holds, per frame, the positions of samples and proxies, the force
on each (physics.forces, the arrows), the total energy and the class field on a coarse grid
(physics.class_potential) minus a fixed reference (the plateau, see descent.plateau).
Movies are recorded in chunks and joined, so a longer run reuses a shorter one."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pfml_core import guards
from pfml_core.playground import descent
from pfml_core.playground.descent import Dynamics, Frame
from pfml_core.playground.scene import Scene


@dataclass
class Movie:
    """K frames of one descent of one scene, seen through the field of class `cls`."""

    steps: np.ndarray  # (K,) descent step of each frame
    points: np.ndarray  # (K, n, 2)
    proxies: np.ndarray  # (K, P, 2)
    forces: np.ndarray  # (K, n + P, 2) samples then proxies
    energy: np.ndarray  # (K,) total energy U (Eq. 6)
    field: np.ndarray  # (K, g, g) Psi_cls - reference; row i at ys[i] (lowest y first)
    xs: np.ndarray  # (g,) grid cell centres
    ys: np.ndarray  # (g,)
    reference: float  # what was subtracted: the plateau (PFML) or frame 0's median
    cls: int
    view: tuple[float, float, float, float]
    potential: str
    held_samples: bool = False  # the samples stayed put (Dynamics.move_samples off)

    def __len__(self) -> int:
        return len(self.steps)

    def frame(self, k: int) -> Frame:
        """Frame k as a descent.Frame (to continue the descent from it)."""
        return Frame(int(self.steps[k]), self.points[k], self.proxies[k], float(self.energy[k]))

    def frames(self) -> list[Frame]:
        return [self.frame(k) for k in range(len(self))]

    def dragged(self, mask) -> np.ndarray:
        """How far each masked sample moved from the first frame to the last."""
        return np.linalg.norm(self.points[-1][mask] - self.points[0][mask], axis=1)


def record(scene: Scene, dyn: Dynamics, cls: int, view, steps: int, start: Frame | None = None,
           grid: int = descent.GRID, reference: float | None = None) -> Movie:
    """Frames 0..steps (or `start` and the `steps` after it) with forces and field.
    `reference`: the value to subtract from the field; default: the plateau, or for a
    potential without one the median of the first frame's field."""
    guards.check_int("steps", steps, 0)
    guards.check_int("cls", cls, 0, max(scene.num_classes - 1, 0))
    xs, ys = descent.grid_axes(view, grid)
    frame = descent.initial_frame(scene, dyn) if start is None else start
    frames, forces, fields = [], [], []
    for k in range(steps + 1):
        f = descent.point_forces(scene, frame, dyn)  # the arrows, and the step's gradient
        frames.append(frame)
        forces.append(f)
        fields.append(descent.field_on_grid(scene, frame, cls, dyn, xs, ys))
        if k < steps:
            frame = descent.step(scene, frame, dyn, forces=f)
    return _movie(scene, dyn, cls, view, frames, forces, fields, xs, ys, reference)


def of_frames(scene: Scene, frames: list[Frame], dyn: Dynamics, cls: int, view,
              grid: int = descent.GRID) -> Movie:
    """A Movie of frames recorded elsewhere (descent.simulate): their forces and field."""
    xs, ys = descent.grid_axes(view, grid)
    forces = [descent.point_forces(scene, f, dyn) for f in frames]
    fields = [descent.field_on_grid(scene, f, cls, dyn, xs, ys) for f in frames]
    return _movie(scene, dyn, cls, view, frames, forces, fields, xs, ys, None)


def _movie(scene, dyn, cls, view, frames, forces, fields, xs, ys, reference) -> Movie:
    if reference is None:
        reference = descent.field_reference(scene, cls, dyn, fields[0])
    k, n, p = len(frames), len(scene.points), len(scene.proxies)
    return Movie(steps=np.array([f.step for f in frames]),
                 points=np.stack([f.points for f in frames]).reshape(k, n, 2),
                 proxies=np.stack([f.proxies for f in frames]).reshape(k, p, 2),
                 forces=np.stack(forces).reshape(k, n + p, 2).astype(np.float32),
                 energy=np.array([f.energy for f in frames]),
                 field=(np.stack(fields) - np.float32(reference)).astype(np.float32),
                 xs=xs, ys=ys, reference=float(reference), cls=int(cls),
                 view=tuple(float(v) for v in view), potential=dyn.potential,
                 held_samples=not dyn.move_samples)


def join(movies: list[Movie]) -> Movie:
    """One Movie from consecutive chunks; a chunk that starts where the previous one ended
    drops its first frame (the same frame twice)."""
    if not movies:
        raise ValueError("movies must hold at least one Movie, got 0")
    keep = [movies[0]] + [m if m.steps[0] > prev.steps[-1] else _drop_first(m)
                          for prev, m in zip(movies, movies[1:])]
    cat = lambda name: np.concatenate([getattr(m, name) for m in keep])  # noqa: E731
    first = movies[0]
    return Movie(steps=cat("steps"), points=cat("points"), proxies=cat("proxies"),
                 forces=cat("forces"), energy=cat("energy"), field=cat("field"),
                 xs=first.xs, ys=first.ys, reference=first.reference, cls=first.cls,
                 view=first.view, potential=first.potential, held_samples=first.held_samples)


def _drop_first(m: Movie) -> Movie:
    return Movie(steps=m.steps[1:], points=m.points[1:], proxies=m.proxies[1:],
                 forces=m.forces[1:], energy=m.energy[1:], field=m.field[1:], xs=m.xs,
                 ys=m.ys, reference=m.reference, cls=m.cls, view=m.view, potential=m.potential,
                 held_samples=m.held_samples)
