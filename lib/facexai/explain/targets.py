"""What an explanation explains: a scalar score per image computed from its embedding.

Reference embedding of a person (``reference_embeddings``): r = L2-normalised mean of f(x_j)
over the person's OTHER images (``"leave_one_out"``, default), over all of them (``"all"``), or
one partner image (``"pair"``). Targets are callables on an embedding batch (N, D) returning one
score per image (N,); on a single embedding (D,) they return a scalar, so a list
``[target.select(i) for i in range(N)]`` plugs into pytorch-grad-cam's ``targets`` argument.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

REFERENCES = ("leave_one_out", "all", "pair")
TARGETS = ("cosine", "arcface", "contrastive")


def reference_embeddings(
    embeddings: torch.Tensor,
    mode: str = "leave_one_out",
    partners: Sequence[int] | None = None,
    normalize_each: bool = False,
) -> torch.Tensor:
    """Unit reference embedding (n, D) for each of one person's n image embeddings (n, D).

    ``partners[i]`` is image i's partner in ``"pair"`` mode (default: the next image, cyclically).
    ``normalize_each`` L2-normalises every f(x_j) before averaging. A person with one image has
    no leave-one-out or pair reference: ValueError.
    """
    if mode not in REFERENCES:
        raise ValueError(f"unknown reference mode {mode!r}; valid: {REFERENCES}")
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError(f"embeddings must be (n >= 1, D), got shape {tuple(embeddings.shape)}")
    n = len(embeddings)
    emb = embeddings.detach().double()
    if normalize_each:
        emb = F.normalize(emb, dim=-1)
    if mode != "all" and n < 2:
        raise ValueError(f"reference mode {mode!r} needs >= 2 images of the person, got 1 "
                         "(drop single-image people or use reference='all')")
    if mode == "leave_one_out":
        ref = (emb.sum(0, keepdim=True) - emb) / (n - 1)
    elif mode == "all":
        ref = emb.mean(0, keepdim=True).expand(n, -1)
    else:
        idx = list(range(1, n)) + [0] if partners is None else [int(j) for j in partners]
        if len(idx) != n or any(not 0 <= j < n or j == i for i, j in enumerate(idx)):
            raise ValueError(f"partners must give, for each of the {n} images, another image's index; got {idx}")
        ref = emb[idx]
    return F.normalize(ref, dim=-1).to(embeddings.dtype)


def _unit(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.to(like.device, like.dtype), dim=-1)


def _check_rows(per_image: torch.Tensor | None, embeddings: torch.Tensor, what: str) -> None:
    """ValueError unless batched per-image parameters have one row per embedding."""
    if per_image is not None and per_image.ndim == (2 if what == "references" else 1):
        n_emb = len(embeddings) if embeddings.ndim == 2 else 1
        if len(per_image) != n_emb:
            raise ValueError(f"target holds {len(per_image)} {what} but got {n_emb} embeddings; "
                             "use target.select(...) for a sub-batch")


class Target:
    """Base of the targets: per-image parameters have a leading batch axis, shared ones none."""

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def select(self, index: int | slice | torch.Tensor) -> Target:
        """The target of image ``index`` (unbatched) or of a sub-batch (slice / index tensor)."""
        raise NotImplementedError


class CosineTarget(Target):
    """s(x) = cos(f(x), r) with r of shape (D,) (shared) or (N, D) (one per image)."""

    def __init__(self, reference: torch.Tensor):
        self.reference = reference.detach()

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        _check_rows(self.reference, embeddings, "references")
        return (F.normalize(embeddings, dim=-1) * _unit(self.reference, embeddings)).sum(-1)

    def select(self, index: int | slice | torch.Tensor) -> CosineTarget:
        return CosineTarget(self.reference[index]) if self.reference.ndim == 2 else self


class ArcFaceTarget(Target):
    """s(x) = log_softmax(logits)[y], minus the ArcFace loss of x against a gallery.

    logits_j = scale * cos(theta_j) for j != y and scale * cos(theta_y + margin) for the true
    class y, theta_j = angle between f(x) and gallery row j. ``true_reference`` (N, D), when
    given, replaces gallery row y for image i (e.g. its leave-one-out reference).
    """

    def __init__(self, gallery: torch.Tensor, labels: int | torch.Tensor,
                 true_reference: torch.Tensor | None = None, scale: float = 64.0, margin: float = 0.2):
        self.gallery = gallery.detach()
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if self.gallery.ndim != 2 or not bool(((self.labels >= 0) & (self.labels < len(gallery))).all()):
            raise ValueError(f"labels must index the gallery's {len(gallery)} rows")
        self.true_reference = None if true_reference is None else true_reference.detach()
        self.scale, self.margin = float(scale), float(margin)

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(embeddings.unsqueeze(0) if embeddings.ndim == 1 else embeddings, dim=-1)
        _check_rows(self.labels, embeddings, "labels")
        _check_rows(self.true_reference, embeddings, "references")
        labels = self.labels.to(emb.device).expand(len(emb)).unsqueeze(1)
        cos = emb @ _unit(self.gallery, emb).T
        if self.true_reference is None:
            cos_y = cos.gather(1, labels)
        else:
            cos_y = (emb * _unit(self.true_reference, emb)).sum(-1, keepdim=True)
        theta = torch.acos(cos_y.clamp(-1 + 1e-7, 1 - 1e-7))
        logits = (self.scale * cos).scatter(1, labels, self.scale * torch.cos(theta + self.margin))
        score = F.log_softmax(logits, dim=1).gather(1, labels).squeeze(1)
        return score.squeeze(0) if embeddings.ndim == 1 else score

    def select(self, index: int | slice | torch.Tensor) -> ArcFaceTarget:
        labels = self.labels[index] if self.labels.ndim else self.labels
        true_ref = self.true_reference
        if true_ref is not None and true_ref.ndim == 2:
            true_ref = true_ref[index]
        return ArcFaceTarget(self.gallery, labels, true_ref, self.scale, self.margin)


class ContrastiveTarget(Target):
    """s(x) = cos(f(x), r) - cos(f(x), r_other): own-reference similarity minus that of a chosen other
    identity's reference (:func:`person_target` picks, per image, the nearest other identity)."""

    def __init__(self, reference: torch.Tensor, other: torch.Tensor):
        if reference.shape != other.shape:
            raise ValueError(f"reference {tuple(reference.shape)} and other {tuple(other.shape)} must match")
        self.reference, self.other = reference.detach(), other.detach()

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        _check_rows(self.reference, embeddings, "references")
        emb = F.normalize(embeddings, dim=-1)
        return (emb * _unit(self.reference, emb)).sum(-1) - (emb * _unit(self.other, emb)).sum(-1)

    def select(self, index: int | slice | torch.Tensor) -> ContrastiveTarget:
        if self.reference.ndim == 1:
            return self
        return ContrastiveTarget(self.reference[index], self.other[index])


def person_target(
    embeddings_by_person: Sequence[torch.Tensor],
    kind: str = "cosine",
    reference: str = "leave_one_out",
    scale: float = 64.0,
    margin: float = 0.2,
) -> Target:
    """One batched target over all images of all people, in order (person by person).

    ``"arcface"``: the gallery holds every person's ``"all"`` reference; the true class's row is
    replaced by the image's own reference of mode ``reference``. ``"contrastive"``: the image's own
    reference minus the gallery row of the other person its clean embedding is most similar to.
    """
    if kind not in TARGETS:
        raise ValueError(f"unknown target {kind!r}; valid: {TARGETS}")
    refs = torch.cat([reference_embeddings(e, reference) for e in embeddings_by_person])
    if kind == "cosine":
        return CosineTarget(refs)
    gallery = torch.stack([reference_embeddings(e, "all")[0] for e in embeddings_by_person])
    labels = torch.cat([torch.full((len(e),), p) for p, e in enumerate(embeddings_by_person)])
    if kind == "contrastive":
        if len(gallery) < 2:
            raise ValueError("the contrastive target needs at least two people")
        cos = F.normalize(torch.cat(list(embeddings_by_person)).double(), dim=-1) @ gallery.double().T
        cos[torch.arange(len(labels)), labels] = -torch.inf  # the nearest OTHER identity
        return ContrastiveTarget(refs, gallery[cos.argmax(1)])
    return ArcFaceTarget(gallery, labels, refs, scale, margin)
