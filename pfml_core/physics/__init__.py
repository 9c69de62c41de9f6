"""PFML's physics: the pair potential (defined once, in `potentials`), class potential
fields by superposition, forces, the total energy (paper Eq. 6) and the loss built on it."""
from pfml_core.physics.field import (
                                     EPS,
                                     REDUCTIONS,
                                     attraction,
                                     class_potential,
                                     forces,
                                     pairwise_distance,
                                     repulsion,
                                     safe_eps,
                                     total_energy,
)
from pfml_core.physics.kernel import RowShard
from pfml_core.physics.loss import PotentialFieldLoss
from pfml_core.physics.potentials import POTENTIALS, Potential, get_potential

__all__ = ["EPS", "POTENTIALS", "Potential", "PotentialFieldLoss", "REDUCTIONS", "RowShard",
           "attraction", "class_potential", "forces", "get_potential", "pairwise_distance",
           "repulsion", "safe_eps", "total_energy"]
