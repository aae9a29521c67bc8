"""Channel-level activation patterns: the statistics against plain formulas, one pass for every layer."""
import numpy as np
import pytest
import torch
from torch import nn

from facexai import channel_patterns as cp
from facexai import embed, study
from facexai.explain import LEAM


class TwoConv(nn.Module):
    """A tiny model: two conv stages, then a linear embedding."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.head = nn.Linear(6 * 4 * 4, 5)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(torch.relu(self.b(torch.relu(self.a(x / 255)))).flatten(1))


def test_statistics_are_normalised_per_layer_means_of_abs():
    a = torch.tensor([[[[1.0, -3.0]], [[0.0, 2.0]]]])  # (1, C=2, 1, 2)
    g = torch.tensor([[[[2.0, 1.0]], [[5.0, -1.0]]]])
    b = torch.ones(1, 3, 2, 2)  # a second layer, 3 channels, all equal
    out = cp.channel_statistics([a, b], [g, b], ["activation", "grad_x_activation"])
    assert out.shape == (1, 2, 5)
    # activation: mean |A| = (2, 1) -> (2/3, 1/3); |A G| means = (2.5, 1) -> (5/7, 2/7); layer 2 uniform
    np.testing.assert_allclose(out[0, 0].numpy(), [2 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(out[0, 1].numpy(), [5 / 7, 2 / 7, 1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown channel statistics"):
        cp.channel_statistics([a], [g], ["variance"])


def test_an_all_zero_pattern_becomes_uniform_and_is_counted():
    values = torch.tensor([[0.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    out, n_zero = cp.normalise_channels(values)
    assert n_zero == 1
    np.testing.assert_allclose(out.numpy(), [[1 / 3] * 3, [0.25, 0.75, 0.0]])
    with pytest.raises(FloatingPointError):
        cp.normalise_channels(torch.tensor([[np.nan, 1.0]]))


def test_one_pass_gives_every_layer_and_matches_autograd():
    model = TwoConv()
    x = torch.rand(3, 3, 16, 16) * 255
    ref = torch.randn(3, 5)
    target = lambda emb: nn.functional.cosine_similarity(emb, ref)  # noqa: E731
    explainer = LEAM(model, {"a": "a", "b": "b"}, 16)
    model.calls = 0
    acts, grads = explainer.activations_and_gradients(x, target)
    assert model.calls == 1 and [a.shape[1] for a in acts] == [4, 6]
    # the same quantities by hand: hooks on both layers, one autograd.grad
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o)) for m in (model.a, model.b)]
    score = target(model(x)).sum()
    for h in hooks:
        h.remove()
    want = torch.autograd.grad(score, seen)
    for got, exp in zip(grads, want):
        torch.testing.assert_close(got, exp)
    pattern = cp.channel_statistics(acts, grads, ["grad_x_activation"])[:, 0]
    by_hand = (seen[1] * want[1]).abs().mean((2, 3))
    torch.testing.assert_close(pattern[:, 4:], (by_hand / by_hand.sum(1, keepdim=True)).detach())


def test_layer_slices_of_the_container():
    rng = np.random.default_rng(0)
    patterns = rng.random((2, 1, 7)).astype(np.float32)
    c = cp.ChannelPatterns("M", ["x", "y"], [3, 4], ["activation"], None, patterns)
    first, last = c.layer_patterns("activation")
    np.testing.assert_array_equal(first, patterns[:, 0, :3])
    np.testing.assert_array_equal(last, patterns[:, 0, 3:])
    assert c.slice(-1) == slice(3, 7)


def test_patterns_are_cached_and_a_lost_layout_is_recovered(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import pandas as pd

    from tiny_face import TinyFace

    model = TinyFace()
    model.spec.geometry, model.fingerprint = "tiny16", "tiny-v1"
    calls = []
    model.register_forward_hook(lambda _m, _i, out: calls.append(len(out)))
    images = pd.DataFrame({"identity": np.repeat(["a", "b", "c"], 3), "path": [f"p{i}" for i in range(9)]})
    crops = np.random.default_rng(0).integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    monkeypatch.setattr(study, "crops", lambda cfg, paths, geometry: (crops[[int(p[1:]) for p in paths]],
                                                                         list(paths)))
    emb = np.random.default_rng(1).normal(size=(9, 16)).astype(np.float32)
    monkeypatch.setattr(embed, "cached_embed", lambda m, c, keys, root: emb[[int(k[1:]) for k in keys]])
    cfg = SimpleNamespace(cache_root=tmp_path, seed=0)
    first = cp.channel_patterns(cfg, model, images, statistics=["activation", "grad_x_activation"], batch_size=4)
    assert sum(calls) == 9 and first.channels == [4, 4] and first.patterns.shape == (9, 2, 8)
    for stat in first.statistics:
        for layer in first.layer_patterns(stat):
            np.testing.assert_allclose(layer.sum(1), 1.0, rtol=1e-6)
    calls.clear()
    again = cp.channel_patterns(cfg, model, images, statistics=["activation", "grad_x_activation"], batch_size=4)
    assert sum(calls) == 0  # read from the cache: no pass at all
    np.testing.assert_array_equal(again.patterns, first.patterns)
    (layout,) = tmp_path.glob("channels/TINY/*/layout.json")
    layout.unlink()
    recovered = cp.channel_patterns(cfg, model, images, statistics=["activation", "grad_x_activation"])
    assert sum(calls) == 1 and recovered.channels == [4, 4]  # one image's pass gives the layout back
    part = cp.channel_patterns(cfg, model, images, statistics=["activation"], max_images=3)
    assert len(part.images) == 3 and part.images.identity.nunique() == 1  # whole individuals
