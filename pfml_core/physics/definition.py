"""PFML's loss as the paper writes it (Eq. 1-6), on one screen: read this first. Every batch
embedding and proxy sits in the potential field of its own class; the loss is the total
energy. `field.total_energy` computes the same number faster (the Gram kernel), with input
checks, shards and half precision; the tests hold it to this definition."""
import torch
import torch.nn.functional as F


def total_energy(embeddings, labels, proxies=None, proxy_labels=None, *, alpha: float,
                 delta: float, delta_rep: float | None = None, eps: float = 1e-6):
    """U = sum over ordered pairs i != j of psi(d_ij), on L2-normalised points (Eq. 6):
    same class   psi_att(d) = -1 / max(d, delta)^alpha      (Eq. 1: flat inside delta)
    other class  psi_rep(d) = +1 / min(d, delta_rep)^alpha  (Eq. 2: a margin)
    delta_rep defaults to delta; d is clamped at eps so that 1/d^alpha stays finite."""
    delta_rep = delta if delta_rep is None else delta_rep
    if proxies is not None:
        embeddings, labels = torch.cat([embeddings, proxies]), torch.cat([labels, proxy_labels])
    z = F.normalize(embeddings, dim=1)
    d = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist").clamp(min=eps)
    same = labels[:, None] == labels[None, :]
    psi = torch.where(same, -d.clamp(min=max(delta, eps)) ** -alpha,
                      d.clamp(max=max(delta_rep, eps)) ** -alpha)
    return psi.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), 0.0).sum()
