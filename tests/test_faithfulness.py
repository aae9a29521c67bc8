"""Deletion / insertion curves on a tiny model whose answer is known: it only looks at one patch."""
import facexai  # noqa: F401
import numpy as np
import pytest
import torch
from torch import nn

from facexai import faithfulness as fa

SIZE = 16
PATCH = (slice(4, 8), slice(9, 13))  # the 16 pixels the model sees


class PatchModel(nn.Module):
    """Embedding = the patch's pixels (centred) and a constant: nothing outside the patch matters."""

    def forward(self, x):
        patch = x[:, :, PATCH[0], PATCH[1]].flatten(1) / 255 - 0.5
        return torch.cat([patch, torch.full((len(x), 1), 0.05)], 1)


def images(n=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=gen) * 255


def true_maps(n, noise=0.0, seed=0):
    maps = np.zeros((n, SIZE, SIZE))
    maps[:, PATCH[0], PATCH[1]] = 1.0
    return maps + noise * np.random.default_rng(seed).random(maps.shape)


def test_deletion_in_the_true_order_drops_faster_than_the_controls():
    x = images()
    model = PatchModel()
    refs = model(x)
    steps = fa.fractions(16)
    ranks = fa.orders({"true": true_maps(len(x), noise=0.01)}, seed=3)
    table = fa.curves(model, x, ranks, refs, steps=steps, baseline="mean", progress=False)
    aucs = fa.auc(table).groupby(["mode", "order"]).auc.mean()
    assert aucs["deletion", "true"] < aucs["deletion", "random"] - 0.2
    assert aucs["deletion", "true"] < aucs["deletion", "true shifted"] - 0.2
    assert aucs["insertion", "true"] > aucs["insertion", "random"] + 0.2
    assert aucs["insertion", "true"] > aucs["insertion", "true shifted"] + 0.2
    curve = table[(table["mode"] == "deletion") & (table.order == "true")].groupby("fraction").cosine.mean()
    assert curve[0.0] == pytest.approx(1.0)  # nothing removed: the clean image
    assert curve[1 / 16] < 0.9 and curve[1 / 16] == pytest.approx(curve[1.0], abs=1e-6)  # patch gone after 1/16
    verdicts = fa.faithfulness_verdicts(fa.auc(table), ["true"], "patch").set_index("check").verdict
    assert verdicts.to_dict() == {"faithfulness (deletion)": "passes", "faithfulness (insertion)": "passes"}


def test_a_map_that_avoids_the_patch_fails_the_rule():
    x = images()
    model = PatchModel()
    wrong = 1 - true_maps(len(x))  # everything but the patch first
    table = fa.curves(model, x, fa.orders({"wrong": wrong}), model(x), steps=fa.fractions(8), progress=False)
    verdicts = fa.faithfulness_verdicts(fa.auc(table), ["wrong"], "patch").set_index("check").verdict
    assert set(verdicts) == {"fails"}


def test_batching_does_not_change_the_scores_and_acceptance_counts_partners():
    x = images(2)
    model = PatchModel()
    ranks = fa.orders({"true": true_maps(2)})
    partners = [model(images(3, seed=1)), model(x[1:])]
    kw = dict(steps=fa.fractions(4), partners=partners, threshold=0.5, progress=False)
    one = fa.curves(model, x, ranks, model(x), batch_size=1, **kw)
    many = fa.curves(model, x, ranks, model(x), batch_size=1000, **kw)
    assert np.allclose(one.cosine, many.cosine, atol=1e-6) and np.allclose(one.acceptance, many.acceptance)
    clean = one[(one.fraction == 0) & (one["mode"] == "deletion") & (one.image == 1)]
    assert (clean.acceptance == 1.0).all()  # image 1's only partner is itself, clean


def test_auc_is_the_trapezoid_over_the_fraction():
    table = fa.pd.DataFrame({"image": 0, "mode": "deletion", "order": "m", "fraction": [0, 0.5, 1.0],
                             "cosine": [1.0, 0.5, 0.0]})
    assert fa.auc(table).auc.item() == pytest.approx(0.5)


def test_orders_and_controls_keep_their_promises():
    maps = true_maps(2, noise=0.01)
    ranks = fa.orders({"m": maps}, seed=1)
    for r in ranks.values():
        assert (np.sort(r, axis=1) == np.arange(SIZE * SIZE)).all()  # permutations
    top = fa.map_ranks(maps) < 16
    assert top.reshape(2, SIZE, SIZE)[:, PATCH[0], PATCH[1]].all()
    shifted = (ranks["m shifted"] < 16).reshape(2, SIZE, SIZE)
    assert shifted.sum() == top.sum() and not (shifted & top.reshape(2, SIZE, SIZE)).any()
    tie = fa.map_ranks(np.zeros((1, 2, 2)))
    assert tie.tolist() == [[0, 1, 2, 3]]  # ties: by flat index


def test_baselines():
    x = images(2)
    mean = fa.baseline_images(x, "mean")
    assert torch.allclose(mean[:, :, 0, 0], x.mean((2, 3)))
    blur = fa.baseline_images(x, "blur")
    assert blur.shape == x.shape and blur.std() < x.std()
    with pytest.raises(ValueError, match="baseline"):
        fa.baseline_images(x, "noise")


def test_bad_input_is_refused():
    x = images(1)
    model = PatchModel()
    ranks = fa.orders({"m": true_maps(1)})
    with pytest.raises(ValueError, match="steps"):
        fa.curves(model, x, ranks, model(x), steps=np.array([0.5, 0.2]), progress=False)
    with pytest.raises(ValueError, match="ranks"):
        fa.curves(model, images(2), ranks, model(x), steps=fa.fractions(2), progress=False)
    with pytest.raises(ValueError, match="both"):
        fa.curves(model, x, ranks, model(x), steps=fa.fractions(2), threshold=0.3, progress=False)
    with pytest.raises(ValueError, match="n_steps"):
        fa.fractions(0)
