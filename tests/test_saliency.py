"""Study-level saliency store: cached per-image maps equal a direct LEAM call, person maps are means."""
import numpy as np
import pandas as pd
import pytest
import torch

from facexai import embed, profiles, saliency, study, techniques
from facexai.explain import LEAM, person_target
from facexai.models import load_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_dir):
    cache = tmp_path_factory.mktemp("cache")
    cfg = profiles.resolve("smoke", cache_root=str(cache), run_name="saliency-test")
    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:2]
    rows = [(who, str(f)) for who in people for f in sorted((sample_dir / who).glob("*.jpg"))[:3]]
    images = pd.DataFrame(rows, columns=["identity", "path"])
    return cfg, load_model("SFACE", cache_root=cache), images


def test_maps_match_direct_leam_and_are_cached(setup, monkeypatch):
    cfg, model, images = setup
    ms = saliency.image_maps(cfg, model, images, layers=["conv_6", "conv_14"])
    assert ms.maps.shape == (6, 2, 112, 112) and ms.maps.dtype == np.float16
    np.testing.assert_allclose(ms.maps.astype(np.float32).sum((-2, -1)), 1.0, atol=2e-3)
    crops, _ = study.crops(cfg, images.path.tolist(), "arcface112")
    x = embed.to_tensor(crops)
    with torch.no_grad():
        emb = model(x)
    tgt = person_target(list(emb.split([3, 3])), "cosine", "leave_one_out")
    antialias = profiles.method().antialias  # the method table's LEAM definition
    direct = LEAM(model, {n: model.layer_path(n) for n in ["conv_6", "conv_14"]}, antialias=antialias)(x, tgt).numpy()
    np.testing.assert_allclose(ms.maps.astype(np.float32), direct, atol=1e-3 * direct.max())
    # a second call reads the cache: no explainer runs
    monkeypatch.setattr(saliency, "cam_runner", None)
    again = saliency.image_maps(cfg, model, images, layers=["conv_6", "conv_14"])
    np.testing.assert_array_equal(again.maps, ms.maps)


def test_person_maps_are_means(setup):
    cfg, model, images = setup
    ms = saliency.image_maps(cfg, model, images, layers=["conv_6", "conv_14"])
    pm = ms.persons()
    ids, person = pm.identities, pm.maps
    assert ids == sorted(images.identity.unique())
    first = ms.maps[:3].astype(np.float32).mean(0)
    np.testing.assert_allclose(person[0], first / first.sum((-2, -1), keepdims=True), rtol=1e-5)
    sub = ms.persons(images.path.tolist()[:2] + images.path.tolist()[3:4])
    assert sub.identities == ids and sub.maps.shape == person.shape


def test_unknown_explainer_and_layer(setup):
    cfg, model, images = setup
    with pytest.raises(ValueError, match="unknown explainer"):
        saliency.image_maps(cfg, model, images, explainer="magic")
    with pytest.raises(ValueError, match="unknown layer 'conv_99'"):
        saliency.image_maps(cfg, model, images, layers=["conv_99"])
    with pytest.raises(ValueError, match=r"no setting\(s\) \['n_masks'\]"):
        saliency.image_maps(cfg, model, images, n_masks=10)  # a RISE setting given to LEAM


def test_settings_object_equals_overrides_and_policy_layers(setup):
    cfg, model, images = setup
    tech = techniques.get("leam")
    by_object = saliency.image_maps(cfg, model, images, layers=["conv_14"],
                                    settings=tech.settings(weighting="gradcam"))
    by_name = saliency.image_maps(cfg, model, images, layers=["conv_14"], weighting="gradcam")
    np.testing.assert_array_equal(by_object.maps, by_name.maps)
    default = saliency.image_maps(cfg, model, images, layers=["conv_14"])
    assert not np.array_equal(default.maps, by_name.maps)  # the weighting reaches the explainer and the cache key
    one = saliency.image_maps(cfg, model, images, explainer="gradcam")  # policy: the method's cam_layer
    assert one.layers == [list(model.layers)[-2]] and one.geometry == "arcface112"
    with pytest.raises(TypeError, match="takes CamSettings"):
        saliency.image_maps(cfg, model, images, explainer="gradcam", settings=techniques.get("srise").settings())


def test_maps_are_stored_rounded_as_numpy_rounds_them():
    """The store casts maps to float16 in torch (faster); it must round exactly as numpy's cast did."""
    edges = [0.0, 2.98e-8, 5.96e-8, 6e-8, 1e-7, 6.1e-5, 1e-5, 0.33333334, 65504.0, 65519.0, 65520.0]
    x = torch.cat([torch.tensor(edges), torch.rand(100_000) * 1e-3, torch.rand(1000)])
    via_torch = x.to(torch.float16).numpy().view(np.uint16)
    with np.errstate(over="ignore"):
        via_numpy = x.numpy().astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(via_torch, via_numpy)
