"""The contrastive target: own-reference similarity minus the nearest other identity's, against NumPy."""
import numpy as np
import pytest
import torch

from facexai.explain.targets import ContrastiveTarget, person_target, reference_embeddings


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_contrastive_picks_the_nearest_other_person():
    g = torch.Generator().manual_seed(1)
    people = [torch.randn(3, 8, generator=g, dtype=torch.float64) + 2 * torch.eye(8, dtype=torch.float64)[p]
              for p in range(4)]
    tgt = person_target(people, "contrastive")
    emb = torch.cat(people).numpy()
    own = torch.cat([reference_embeddings(e) for e in people]).numpy()
    gallery = np.stack([unit(e.numpy().mean(0)) for e in people])
    labels = np.repeat(np.arange(4), 3)
    cos = unit(emb) @ gallery.T
    cos[np.arange(12), labels] = -np.inf
    nearest = gallery[cos.argmax(1)]
    want = (unit(emb) * own).sum(1) - (unit(emb) * nearest).sum(1)
    np.testing.assert_allclose(tgt(torch.cat(people)).numpy(), want, atol=1e-10)
    np.testing.assert_allclose(tgt.select(slice(3, 6))(people[1]).numpy(), want[3:6], atol=1e-10)
    assert float(tgt.select(4)(people[1][1])) == pytest.approx(want[4])


def test_contrastive_needs_two_people_and_matching_shapes():
    with pytest.raises(ValueError, match="two people"):
        person_target([torch.randn(3, 4)], "contrastive")
    with pytest.raises(ValueError, match="must match"):
        ContrastiveTarget(torch.randn(2, 4), torch.randn(3, 4))
