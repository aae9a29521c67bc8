"""Reference embeddings and targets against straightforward NumPy formulas."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facexai.explain import ArcFaceTarget, CosineTarget, person_target, reference_embeddings


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def emb():
    return torch.randn(4, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_reference_modes(emb):
    e = emb.numpy()
    loo = reference_embeddings(emb).numpy()
    for i in range(4):
        np.testing.assert_allclose(loo[i], unit(np.delete(e, i, axis=0).mean(0)), atol=1e-12)
    np.testing.assert_allclose(reference_embeddings(emb, "all").numpy(), np.tile(unit(e.mean(0)), (4, 1)), atol=1e-12)
    np.testing.assert_allclose(reference_embeddings(emb, "pair").numpy(), unit(e[[1, 2, 3, 0]]), atol=1e-12)
    np.testing.assert_allclose(reference_embeddings(emb, "pair", partners=[2, 0, 0, 1]).numpy(),
                               unit(e[[2, 0, 0, 1]]), atol=1e-12)
    each = reference_embeddings(emb, "all", normalize_each=True).numpy()
    np.testing.assert_allclose(each[0], unit(unit(e).mean(0)), atol=1e-12)


def test_reference_errors(emb):
    with pytest.raises(ValueError, match=">= 2 images"):
        reference_embeddings(emb[:1])
    with pytest.raises(ValueError, match=">= 2 images"):
        reference_embeddings(emb[:1], "pair")
    assert reference_embeddings(emb[:1], "all").shape == (1, 16)
    with pytest.raises(ValueError, match="valid"):
        reference_embeddings(emb, "mean")
    with pytest.raises(ValueError, match="partners"):
        reference_embeddings(emb, "pair", partners=[0, 1, 2, 3])


def test_cosine_target(emb):
    ref = F.normalize(torch.randn(16, dtype=torch.float64), dim=0)
    target = CosineTarget(ref)
    torch.testing.assert_close(target(emb), F.cosine_similarity(emb, ref[None], dim=1))
    assert target(emb[0]).shape == ()
    per_image = CosineTarget(emb.flip(0))
    torch.testing.assert_close(per_image(emb), F.cosine_similarity(emb, emb.flip(0), dim=1))
    torch.testing.assert_close(per_image.select(1)(emb[1]), per_image(emb)[1])
    torch.testing.assert_close(per_image.select(slice(1, 3))(emb[1:3]), per_image(emb)[1:3])
    with pytest.raises(ValueError, match="select"):
        per_image(emb[:3])


def arcface_numpy(e, gallery, labels, true_ref, scale, margin):
    cos = unit(e) @ unit(gallery).T
    out = []
    for i, y in enumerate(labels):
        logits = scale * cos[i].copy()
        logits[y] = scale * np.cos(np.arccos(unit(e[i]) @ unit(true_ref[i])) + margin)
        out.append(logits[y] - np.log(np.exp(logits - logits.max()).sum()) - logits.max())
    return np.array(out)


def test_arcface_target(emb):
    gallery = torch.randn(3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 2, 1, 2])
    true_ref = torch.randn(4, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    target = ArcFaceTarget(gallery, labels, true_ref, scale=64, margin=0.2)
    expected = arcface_numpy(emb.numpy(), gallery.numpy(), labels.numpy(), true_ref.numpy(), 64, 0.2)
    np.testing.assert_allclose(target(emb).numpy(), expected, rtol=1e-9)
    assert (target(emb) <= 0).all()
    torch.testing.assert_close(target.select(2)(emb[2]), target(emb)[2])
    plain = ArcFaceTarget(gallery, labels, scale=30, margin=0.0)  # no true_reference: gallery row y
    expected = arcface_numpy(emb.numpy(), gallery.numpy(), labels.numpy(), gallery.numpy()[labels], 30, 0.0)
    np.testing.assert_allclose(plain(emb).numpy(), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="labels"):
        ArcFaceTarget(gallery, torch.tensor([3]))
    with pytest.raises(ValueError, match="4 labels but got 2"):
        plain(emb[:2])


def test_person_target(emb):
    people = [emb[:2], emb[2:]]
    cos = person_target(people, "cosine")
    torch.testing.assert_close(cos.reference, torch.cat([reference_embeddings(p) for p in people]))
    arc = person_target(people, "arcface", margin=0.3)
    assert arc.labels.tolist() == [0, 0, 1, 1] and arc.margin == 0.3
    torch.testing.assert_close(arc.gallery[1], reference_embeddings(people[1], "all")[0])
    with pytest.raises(ValueError, match="valid"):
        person_target(people, "softmax")
