"""The lattice measure on synthetic lattices of known period, and the anti-aliasing treatment."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexai import lattice
from facexai.explain import antialias_map, upsample_maps

SIZE = (160, 160)


def blob(size=SIZE, centre=(80, 70), sigma=25.0) -> np.ndarray:
    """A smooth face-scale bump (no lattice)."""
    yy, xx = np.mgrid[:size[0], :size[1]]
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma ** 2))


def checkerboard(cells: int) -> torch.Tensor:
    """A one-cell checkerboard on a cells x cells grid (1, cells, cells): the grid's Nyquist pattern."""
    idx = torch.arange(cells)
    return ((idx[:, None] + idx[None, :]) % 2).float()[None]


def upsampled(grid_map: torch.Tensor, antialias: bool = False) -> np.ndarray:
    return upsample_maps([grid_map], SIZE, antialias)[:, 0].numpy()


@pytest.mark.parametrize("cells", [40, 79, 20])
def test_lattice_of_known_period_is_found_in_its_own_bins_only(cells):
    pure = upsampled(checkerboard(cells))[0]
    assert lattice.lattice_period(SIZE, (cells, cells)) == pytest.approx(2 * 160 / cells)
    own = lattice.lattice_bins(SIZE, (cells, cells))
    assert lattice.lattice_share(pure, own) > 0.95
    wrong = lattice.lattice_bins(SIZE, (cells + 7, cells + 7))  # another period: other harmonics
    assert lattice.lattice_share(pure, wrong) < 0.1
    assert lattice.lattice_share(blob(), own) < 0.01
    assert lattice.lattice_share(np.ones(SIZE), own) == 0.0  # a constant map has no lattice
    noise = np.random.default_rng(0).random((20, *SIZE))
    assert lattice.lattice_share(noise, own).mean() == pytest.approx(lattice.chance_share(own), rel=0.15)


def test_mixture_share_follows_the_lattice_energy():
    lat = upsampled(checkerboard(40))[0]
    weak, strong = blob() + 0.02 * lat, blob() + 0.2 * lat
    bins = lattice.lattice_bins(SIZE, (40, 40))
    assert 0 < lattice.lattice_share(weak, bins) < lattice.lattice_share(strong, bins) < 1


def test_coarse_layers_are_not_measured():
    assert lattice.lattice_bins(SIZE, (5, 5)) is None  # period 64 px > 16 px
    assert lattice.lattice_bins(SIZE, (5, 5), max_period=100) is not None


def test_antialiasing_at_the_layers_grid_removes_the_lattice_and_keeps_the_blob():
    grid = F.interpolate(torch.from_numpy(blob()).float()[None, None], size=(40, 40), mode="area")[0]
    raw = grid * (1 + checkerboard(40))  # every other cell doubled, as a strided backward pass does
    bins = lattice.lattice_bins(SIZE, (40, 40))
    plain, treated, smooth = upsampled(raw)[0], upsampled(raw, antialias=True)[0], upsampled(grid)[0]
    assert lattice.lattice_share(plain, bins) > 100 * lattice.lattice_share(smooth, bins)
    assert lattice.lattice_share(treated, bins) < lattice.lattice_share(plain, bins) / 1000
    assert np.corrcoef(treated.ravel(), smooth.ravel())[0, 1] > 0.99
    assert torch.equal(antialias_map(torch.full((2, 9, 9), 3.0)), torch.full((2, 9, 9), 3.0))  # constant kept
    assert (antialias_map(raw) >= 0).all()
    tiny = torch.rand(1, 2, 2)
    assert torch.equal(antialias_map(tiny), tiny)  # under 3 cells: unchanged


def test_the_layer_that_makes_the_lattice_is_named():
    rng = np.random.default_rng(1)
    n = 4
    smooth = np.stack([blob(centre=(80 + d, 70 - d)) for d in rng.integers(-10, 10, n)])
    lat = upsampled(checkerboard(40))[0]
    layer_a = smooth + 0.5 * lat  # lattice of a 40x40 layer
    layer_b = smooth  # no lattice
    layer_c = smooth * 0.9  # a coarse 5x5 layer
    maps = np.stack([layer_a, layer_b, layer_c], 1)
    grids = {"a": (40, 40), "b": (38, 38), "c": (5, 5)}
    table = lattice.lattice_table(maps, ["a", "b", "c"], grids, q=1.0).set_index("layer")
    assert table.contribution.sum() == pytest.approx(1.0)
    assert table.contribution["a"] > 0.9
    assert table.critical_drop["a"] > table.critical_drop[["b", "c"]].max()
    assert table.share["a"] > 100 * table.share["b"]
    assert np.isnan(table.share["c"])
    row = lattice.overall_lattice(maps, list(grids.values()))
    clean = lattice.overall_lattice(np.stack([layer_b, layer_b, layer_c], 1), list(grids.values()))
    assert clean["overall_share"] < row["overall_share"] and clean["critical_share"] < row["critical_share"]


def test_lattice_table_equals_the_definitions_computed_with_numpy_fft():
    """Each column from one FFT of the maps equals its definition computed map by map with numpy's FFT: the
    share of |F(m - mean)|^2 in the layer's bins, the same of the overall map, and each layer's part
    Re(F_l conj(F_overall)) / (L |F_overall|^2) of the overall map's energy in the union of the bins."""
    rng = np.random.default_rng(3)
    maps = rng.random((3, 3, 32, 32)) + np.stack([upsample_maps([checkerboard(c)], (32, 32))[:, 0].numpy()[0]
                                                  for c in (16, 8, 4)])[None]
    grids = {"a": (16, 16), "b": (8, 8), "c": (4, 4)}
    table = lattice.lattice_table(maps, list(grids), grids, q=5.0).set_index("layer")

    def spectrum(m):
        return np.fft.fft2(m - m.mean())

    def share(m, bins):
        p = np.abs(spectrum(m)) ** 2
        return p[bins].sum() / p.sum()

    bins = {n: lattice.lattice_bins((32, 32), g) for n, g in grids.items()}
    union = np.logical_or.reduce([b for b in bins.values() if b is not None])
    for j, name in enumerate(grids):
        if bins[name] is None:
            assert np.isnan(table.share[name])
            continue
        assert table.share[name] == pytest.approx(np.mean([share(m[j], bins[name]) for m in maps]), rel=1e-9)
        assert table.share_overall[name] == pytest.approx(np.mean([share(m.mean(0), bins[name]) for m in maps]),
                                                          rel=1e-9)
    parts = []
    for m in maps:
        overall = spectrum(m.mean(0))
        energy = (np.abs(overall[union]) ** 2).sum()
        parts.append([np.real(spectrum(m[j])[union] * np.conj(overall[union])).sum() / (3 * energy) for j in range(3)])
    np.testing.assert_allclose(table.contribution.to_numpy(), np.mean(parts, axis=0), rtol=1e-9)


def test_layer_grids_from_one_forward():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(4, 2, 3))
    grids = lattice.layer_grids(net, {"conv": "0", "pool": "2", "last": "3"}, 64)
    assert grids == {"conv": (31, 31), "pool": (15, 15), "last": (13, 13)}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        lattice.lattice_share(np.full(SIZE, np.nan), lattice.lattice_bins(SIZE, (40, 40)))
    with pytest.raises(ValueError, match="do not match"):
        lattice.lattice_share(blob(), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="no layer"):
        lattice.lattice_table(np.ones((1, 1, *SIZE)), ["c"], {"c": (5, 5)})


def test_cam_antialias_option_and_several_weightings_from_one_pass():
    from facexai.explain import LEAM, CosineTarget, GradCAM, normalise_maps

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.LazyLinear(8))
    x = torch.rand(2, 3, 32, 32) * 255
    net(x)  # materialise the lazy layer
    target = CosineTarget(torch.nn.functional.normalize(torch.randn(8), dim=0))
    plain = LEAM(net, {"c": "0"})
    treated = LEAM(net, {"c": "0"}, antialias=True)
    raw = plain.raw_maps(x, target)
    expected, _ = normalise_maps(upsample_maps(raw, (32, 32), antialias=True))
    assert torch.allclose(treated(x, target), expected, atol=1e-7)
    assert not torch.allclose(plain(x, target), expected)
    both = plain.weighted_maps(x, target, ["elementwise", "gradcam"])
    assert torch.equal(both["elementwise"], plain(x, target))
    assert torch.allclose(both["gradcam"], GradCAM(net, {"c": "0"})(x, target))
    with pytest.raises(ValueError, match="unknown weightings"):
        plain.weighted_maps(x, target, ["mean"])


def test_a_weighting_restricted_to_some_layers_equals_those_layers_of_the_full_maps():
    from facexai.explain import LEAM, CosineTarget

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(),
                        nn.LazyLinear(8))
    x = torch.rand(2, 3, 32, 32) * 255
    net(x)
    target = CosineTarget(torch.nn.functional.normalize(torch.randn(8), dim=0))
    leam = LEAM(net, {"a": "0", "b": "2"})
    full = leam.weighted_maps(x, target, ["elementwise", "gradcam++"])
    some = leam.weighted_maps(x, target, ["elementwise", "gradcam++"], {"gradcam++": [1]})
    assert some["gradcam++"].shape[1] == 1 and torch.allclose(some["gradcam++"][:, 0], full["gradcam++"][:, 1])
    assert torch.equal(some["elementwise"], full["elementwise"])  # unrestricted: every layer
