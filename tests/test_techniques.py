"""The explainer registry: families, layer policies, settings, and what adding an explainer takes."""
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch

from facexai import generalizability, profiles, saliency, techniques
from facexai.explain import BaseCAM, SRISE
from facexai.techniques import INPUT_LAYER, CamSettings, RiseSettings, Technique
from tiny_face import TinyFace


def test_every_technique_names_its_family_class_and_policy():
    assert list(techniques.TECHNIQUES) == ["leam", "gradcam", "gradcam++", "layercam", "srise", "corrrise"]
    for t in techniques.TECHNIQUES.values():
        if t.family == "cam":
            assert issubclass(t.explainer, BaseCAM) and t.layers in ("all", "one")
            assert isinstance(t.settings(), CamSettings)
        else:
            assert len(t.explainer.statistics) == 1 and t.layers == "input"
            assert isinstance(t.settings(), RiseSettings)
        assert set(t.options) <= set(CamSettings.__dataclass_fields__)
    assert techniques.names("rise") == ["srise", "corrrise"]
    assert techniques.names(tuned=True) == ["gradcam", "gradcam++", "layercam"] == list(generalizability.GRAD_CAMS)
    assert generalizability.LABELS["gradcam++"] == "Grad-CAM++" and generalizability.LABELS["random"] == "random pixels"
    with pytest.raises(ValueError, match="unknown explainer 'rise'; valid: .*srise"):
        techniques.get("rise")


def test_layer_policies():
    names = ["a", "b", "c", "d"]
    assert techniques.get("leam").layers_for(names) == names
    assert techniques.get("gradcam").layers_for(names) == ["c"]  # second-to-last by default
    assert techniques.get("gradcam").layers_for(names, cam_layer=-1) == ["d"]
    assert techniques.get("layercam").layers_for(names, ["a", "b"]) == ["a", "b"]  # named layers win
    assert techniques.get("srise").layers_for(names) == [INPUT_LAYER]
    with pytest.raises(ValueError, match="explains the input"):
        techniques.get("corrrise").layers_for(names, ["a"])


def test_settings_come_from_the_method_table_and_overrides(tmp_path, monkeypatch):
    text = profiles.PROFILES_FILE.read_text().replace('target = "cosine"', 'target = "arcface"', 1)
    edited = tmp_path / "profiles.toml"
    edited.write_text(text)
    monkeypatch.setattr(profiles, "PROFILES_FILE", edited)
    leam = techniques.get("leam").settings()
    assert leam.target == "arcface" and techniques.get("srise").settings().target == "arcface"
    assert techniques.get("leam").settings(weighting="gradcam").weighting == "gradcam"
    assert techniques.get("srise").settings(n_masks=7).n_masks == 7
    with pytest.raises(ValueError, match=r"no setting\(s\) \['weighting'\]"):
        techniques.get("srise").settings(weighting="gradcam")
    with pytest.raises(FrozenInstanceError):
        leam.target = "cosine"


class AbsGradCAM(BaseCAM):
    """A new explainer, as a user would add it: only how it weights the gradients (here Grad-CAM's)."""

    weighting = "gradcam"


def test_a_new_registry_entry_is_all_an_explainer_needs(monkeypatch):
    monkeypatch.setitem(techniques.TECHNIQUES, "absgradcam",
                        Technique("absgradcam", "Abs-Grad-CAM", "cam", AbsGradCAM, "one", options=("antialias",)))
    model = TinyFace()
    tech = techniques.get("absgradcam")
    layers = tech.layers_for(list(model.layers))
    runner = saliency.cam_runner(tech, model, layers, tech.settings())
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16)).astype(np.float32))
    with torch.no_grad():
        ref = model(x)
    from facexai.explain import CosineTarget, GradCAM
    maps = runner(x, CosineTarget(ref))
    direct = GradCAM(model, {"c1": "conv1"}, 16, antialias=tech.settings().antialias)(x, CosineTarget(ref))
    assert layers == ["c1"] and maps.shape == (2, 1, 16, 16)
    torch.testing.assert_close(maps, direct)  # same weighting, same maps
    assert generalizability.time_explainer(model, x.permute(0, 2, 3, 1).numpy().astype(np.uint8), "absgradcam") > 0


def test_rise_family_runner_is_built_from_the_registry():
    model = TinyFace()
    settings = techniques.get("srise").settings(n_masks=6, batch_size=3)
    family = saliency.rise_runner(model, settings, seed=0, progress=False)
    assert [s for s in family.statistics] == [t.explainer.statistics[0] for t in techniques.family("rise")]
    assert SRISE.statistics[0] in family.statistics
