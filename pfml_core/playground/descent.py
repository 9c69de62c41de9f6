"""Descent of a toy scene on the total energy (paper Eq. 6), plus what the playground draws:
the class field on a grid and the force on every point. All physics is pfml_core.physics.field.

Choice (documented): a step moves samples AND proxies by -step_size * dU/dx, with U the same
`physics.total_energy(normalize=False)` the loss uses, differentiated by autograd. For the
symmetric pair potentials here dU/dx_i = -2 * F_i, with F_i = physics.forces (the arrows):
each pair appears twice in U. Optional clipping caps each point's move per step (max_move),
because 1/d^alpha makes forces span many orders of magnitude."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pfml_core import guards
from pfml_core.physics import field as physics
from pfml_core.playground.scene import Scene

GRID = 60  # field resolution per axis


@dataclass(frozen=True)
class Dynamics:
    """Physics and step settings of one simulation; hashable for caching."""

    alpha: float = 3.0  # spec §6: alpha searched in 0..6, best near 3
    delta: float = 0.3  # toy plane units, about one cluster spread (paper: 0.1-0.3 on the sphere)
    delta_rep: float | None = None  # None = delta (spec §1)
    potential: str = "pfml"
    step_size: float = 0.002
    max_move: float | None = 0.05  # cap on a point's displacement per step; None = no clipping

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
    """U at the given positions (physics.total_energy, plane coordinates, raw sum)."""
    x, y, p, py = _tensors(scene, points, proxies)
    with torch.no_grad():
        u = physics.total_energy(x, y, p, py, normalize=False, **dyn.physics_kwargs())
    return float(u)


def energy_grad(scene: Scene, points, proxies, dyn: Dynamics) -> tuple[np.ndarray, np.ndarray]:
    """dU/d(points) (n, 2) and dU/d(proxies) (P, 2) by autograd on physics.total_energy."""
    x, y, p, py = _tensors(scene, points, proxies)
    x.requires_grad_(True)
    p.requires_grad_(True)
    u = physics.total_energy(x, y, p, py, normalize=False, **dyn.physics_kwargs())
    gx, gp = torch.autograd.grad(u, [x, p], allow_unused=True)
    gp = torch.zeros_like(p) if gp is None else gp
    return gx.numpy(), gp.numpy()


def _clip(move: np.ndarray, max_move: float | None) -> np.ndarray:
    if max_move is None:
        return move
    norm = np.linalg.norm(move, axis=1, keepdims=True)  # (N, 1)
    return move * np.minimum(1.0, max_move / np.maximum(norm, 1e-12))


def initial_frame(scene: Scene, dyn: Dynamics) -> Frame:
    return Frame(0, scene.points.copy(), scene.proxies.copy(),
                 energy(scene, scene.points, scene.proxies, dyn))


def step(scene: Scene, frame: Frame, dyn: Dynamics) -> Frame:
    """One gradient step on U for samples and proxies together (a new Frame)."""
    guards.check_positive("step_size", dyn.step_size)
    gx, gp = energy_grad(scene, frame.points, frame.proxies, dyn)
    pts = frame.points - _clip(dyn.step_size * gx, dyn.max_move)
    prx = frame.proxies - _clip(dyn.step_size * gp, dyn.max_move)
    pts, prx = pts.astype(np.float32), prx.astype(np.float32)
    return Frame(frame.step + 1, pts, prx, energy(scene, pts, prx, dyn))


def simulate(scene: Scene, dyn: Dynamics, steps: int) -> list[Frame]:
    """Frames 0..steps of the descent (frame 0 = the scene as built)."""
    guards.check_int("steps", steps, 0)
    frames = [initial_frame(scene, dyn)]
    for _ in range(steps):
        frames.append(step(scene, frames[-1], dyn))
    return frames


def point_forces(scene: Scene, frame: Frame, dyn: Dynamics) -> np.ndarray:
    """physics.forces on every sample then proxy: (n + P, 2), the arrows."""
    x, y, p, py = _tensors(scene, frame.points, frame.proxies)
    with torch.no_grad():
        return physics.forces(x, y, p, py, **dyn.physics_kwargs()).numpy()


def bounds(scene: Scene, pad: float = 0.8) -> tuple[float, float, float, float]:
    """A fixed square view (x0, x1, y0, y1) around the scene, so frames do not jump."""
    pts = np.concatenate([scene.points, scene.proxies]).reshape(-1, 2)
    lo, hi = (pts.min(0), pts.max(0)) if len(pts) else (np.zeros(2), np.zeros(2))
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 + pad
    return (float(centre[0] - half), float(centre[0] + half),
            float(centre[1] - half), float(centre[1] + half))


def grid_axes(view, n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """x (n,) and y (n,) coordinates of an n x n grid over the view."""
    x0, x1, y0, y1 = view
    return (np.linspace(x0, x1, n, dtype=np.float32), np.linspace(y0, y1, n, dtype=np.float32))


def field_on_grid(scene: Scene, frame: Frame, cls: int, dyn: Dynamics, xs, ys) -> np.ndarray:
    """Psi_cls (len(ys), len(xs)) from all samples and proxies: physics.class_potential."""
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx) each, row = y
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))  # (ny * nx, 2)
    src = torch.as_tensor(np.concatenate([frame.points, frame.proxies]), dtype=torch.float32)
    lab = torch.as_tensor(np.concatenate([scene.labels, scene.proxy_labels]))
    with torch.no_grad():
        psi = physics.class_potential(grid, src, lab, int(cls), **dyn.physics_kwargs())
    return psi.numpy().reshape(len(ys), len(xs))


def field_reference(scene: Scene, cls: int, dyn: Dynamics, z: np.ndarray) -> float:
    """Colour centre of a field: its value far from every source when finite (PFML: each
    other-class source adds 1/delta_rep^alpha there), else the median over the grid."""
    if dyn.potential != "pfml":
        return float(np.median(z))
    n_other = int((scene.labels != cls).sum() + (scene.proxy_labels != cls).sum())
    return n_other * (dyn.delta_rep or dyn.delta) ** -dyn.alpha


def displacement(frames: list[Frame], mask: np.ndarray) -> np.ndarray:
    """How far each masked sample moved from frame 0 to the last frame."""
    d = frames[-1].points[mask] - frames[0].points[mask]
    return np.linalg.norm(d, axis=1)


def snapshot(scene: Scene, frame: Frame, dyn: Dynamics, cls: int, view, n: int = GRID) -> dict:
    """What the playground draws for one frame: grid axes, Psi_cls on the grid, its colour
    reference and the force on every point (keyword arguments of viz.field.field_figure)."""
    xs, ys = grid_axes(view, n)
    z = field_on_grid(scene, frame, cls, dyn, xs, ys)
    return dict(xs=xs, ys=ys, z=z, reference=field_reference(scene, cls, dyn, z),
                forces=point_forces(scene, frame, dyn), cls=int(cls))


def advance(scene: Scene, frames: list[Frame], dyn: Dynamics, steps: int = 1) -> list[Frame]:
    """Append `steps` descent steps to frames in place (the app's running simulation)."""
    for _ in range(steps):
        frames.append(step(scene, frames[-1], dyn))
    return frames
