"""Descent of a toy scene on the total energy (paper Eq. 6), plus what the playground draws:
the class field on a grid and the force on every point. All physics is pfml_core.physics.field.
A step moves samples AND proxies down the gradient of the same
`field.total_energy(normalize=False)` the loss uses (`step`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pfml_core import guards
from pfml_core.physics import field
from pfml_core.playground.scene import Scene

GRID = 40  # field resolution per axis (pixels of the field image)
# grid block size x sources x 2 stays below torch's parallel grain: torch splits an op over
# threads only above 32768 elements, and on a busy 2-core machine that split costs far more
# than it saves for the playground's small tensors
SERIAL_ELEMENTS = 16_000


@dataclass(frozen=True)
class Dynamics:
    """Physics and step settings of one simulation; hashable for caching."""

    alpha: float = 3.0  # docs/method.md, section 6.1: alpha searched in 0..6, best near 3
    delta: float = 0.3  # toy plane units, about one cluster spread (paper: 0.1-0.3 on the sphere)
    delta_rep: float | None = None  # None = delta (docs/method.md, section 1)
    potential: str = "pfml"
    step_size: float = 0.002
    max_move: float | None = 0.05  # cap on a point's displacement per step; None = no clipping
    move_samples: bool = True  # False: samples stay put, only proxies descend (a trained net)

    def physics_kwargs(self) -> dict:
        return dict(alpha=self.alpha, delta=self.delta, delta_rep=self.delta_rep,
                    potential=self.potential)


@dataclass
class Frame:
    """Positions after `step` descent steps and the total energy there."""

    step: int
    points: np.ndarray  # (n, 2)
    proxies: np.ndarray  # (P, 2)
    energy: float


def _tensors(scene: Scene, points, proxies):
    return (torch.as_tensor(points, dtype=torch.float32), torch.as_tensor(scene.labels),
            torch.as_tensor(proxies, dtype=torch.float32), torch.as_tensor(scene.proxy_labels))


def energy(scene: Scene, points, proxies, dyn: Dynamics) -> float:
    """U at the given positions (field.total_energy, plane coordinates, raw sum)."""
    x, y, p, py = _tensors(scene, points, proxies)
    with torch.no_grad():
        u = field.total_energy(x, y, p, py, normalize=False, **dyn.physics_kwargs())
    return float(u)


def _clip(move: np.ndarray, max_move: float | None) -> np.ndarray:
    if max_move is None:
        return move
    norm = np.linalg.norm(move, axis=1, keepdims=True)  # (N, 1)
    return move * np.minimum(1.0, max_move / np.maximum(norm, 1e-12))


def initial_frame(scene: Scene, dyn: Dynamics) -> Frame:
    return Frame(0, scene.points.copy(), scene.proxies.copy(),
                 energy(scene, scene.points, scene.proxies, dyn))


def step(scene: Scene, frame: Frame, dyn: Dynamics, forces: np.ndarray | None = None) -> Frame:
    """One gradient step on U for samples and proxies together (a new Frame):
    -step_size * dU/dx = 2 * step_size * F, F = field.forces at `frame` (pass the
    frame's forces when already computed). For the symmetric pair potentials here
    dU/dx_i = -2 * F_i because each pair appears twice in U, so one forces call also gives
    the arrows (tests check it against autograd of total_energy). dyn.max_move, when set,
    caps each point's move per step, because 1/d^alpha makes forces span many orders of
    magnitude."""
    guards.check_positive("step_size", dyn.step_size)
    f = point_forces(scene, frame, dyn) if forces is None else forces  # (n + P, 2)
    move = _clip(2.0 * dyn.step_size * f, dyn.max_move)
    n = len(frame.points)
    pts = (frame.points + move[:n] * dyn.move_samples).astype(np.float32)
    prx = (frame.proxies + move[n:]).astype(np.float32)
    return Frame(frame.step + 1, pts, prx, energy(scene, pts, prx, dyn))


def simulate(scene: Scene, dyn: Dynamics, steps: int, start: Frame | None = None) -> list[Frame]:
    """Frames 0..steps of the descent (frame 0 = the scene as built), or `start` and the
    `steps` frames after it."""
    guards.check_int("steps", steps, 0)
    frames = [initial_frame(scene, dyn) if start is None else start]
    for _ in range(steps):
        frames.append(step(scene, frames[-1], dyn))
    return frames


def point_forces(scene: Scene, frame: Frame, dyn: Dynamics) -> np.ndarray:
    """field.forces on every sample then proxy: (n + P, 2), the arrows."""
    x, y, p, py = _tensors(scene, frame.points, frame.proxies)
    with torch.no_grad():
        return field.forces(x, y, p, py, **dyn.physics_kwargs()).numpy()


def bounds(scene: Scene, pad: float = 0.8) -> tuple[float, float, float, float]:
    """A fixed square view (x0, x1, y0, y1) around the scene, so frames do not jump."""
    pts = np.concatenate([scene.points, scene.proxies]).reshape(-1, 2)
    lo, hi = (pts.min(0), pts.max(0)) if len(pts) else (np.zeros(2), np.zeros(2))
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 + pad
    return (float(centre[0] - half), float(centre[0] + half),
            float(centre[1] - half), float(centre[1] + half))


def grid_axes(view, n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """x (n,) and y (n,): the centres of n x n equal cells tiling the view (the pixels of
    the field image)."""
    x0, x1, y0, y1 = view
    centres = (np.arange(n, dtype=np.float64) + 0.5) / n
    return ((x0 + (x1 - x0) * centres).astype(np.float32),
            (y0 + (y1 - y0) * centres).astype(np.float32))


def field_on_grid(scene: Scene, frame: Frame, cls: int, dyn: Dynamics, xs, ys) -> np.ndarray:
    """Psi_cls (len(ys), len(xs)), row i at ys[i], from all samples and proxies:
    field.class_potential, in blocks small enough to run on one thread."""
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx) each, row = y
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))  # (ny * nx, 2)
    src = torch.as_tensor(np.concatenate([frame.points, frame.proxies]), dtype=torch.float32)
    lab = torch.as_tensor(np.concatenate([scene.labels, scene.proxy_labels]))
    block = max(1, SERIAL_ELEMENTS // max(1, len(src)))
    with torch.no_grad():
        psi = torch.cat([field.class_potential(grid[i:i + block], src, lab, int(cls),
                                               **dyn.physics_kwargs())
                         for i in range(0, len(grid), block)])
    return psi.numpy().reshape(len(ys), len(xs))


def plateau(scene: Scene, cls: int, dyn: Dynamics) -> float | None:
    """Psi_cls far from every source, when it is finite: PFML's attraction fades to 0 and
    each other-class source adds its constant 1/delta_rep^alpha (Eq. 2), so the field
    sits on n_other / delta_rep^alpha. None for the non-decaying potentials (no far value)."""
    if dyn.potential != "pfml":
        return None
    n_other = int((scene.labels != cls).sum() + (scene.proxy_labels != cls).sum())
    return n_other * (dyn.delta_rep or dyn.delta) ** -dyn.alpha


def field_reference(scene: Scene, cls: int, dyn: Dynamics, z: np.ndarray) -> float:
    """The value the playground subtracts before colouring a field: the plateau when it
    exists, else the median of z (a fixed z, e.g. frame 0's, keeps colours steady)."""
    far = plateau(scene, cls, dyn)
    return float(np.median(z)) if far is None else far
