"""Randomisation sanity checks: the cascade works on a copy, the similarity measures, the verdict rule,
and the Grad-CAM maps they judge equal captum's LayerGradCam (an independent implementation)."""
import facexai  # noqa: F401
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum import attr as captum_attr
from explain_models import RESNET_LAYERS, RawResNet, face_like_images
from torch import nn

from facexai import sanity
from facexai.explain import CosineTarget, GradCAM


@pytest.fixture(scope="module")
def resnet():
    return RawResNet()


def study_explainers(**kwargs):
    return sanity.StudyExplainers(RESNET_LAYERS, "layer3", 64, rise_masks=16, **kwargs)


def own_target(model, images):
    with torch.no_grad():
        return CosineTarget(F.normalize(model(images).flip(0), dim=-1))  # each image against another one's embedding


# ---------------------------------------------------------------- similarity and the verdict rule

def test_similarity_measures_on_known_pairs():
    rng = np.random.default_rng(0)
    a = rng.random((2, 32, 32))
    same = sanity.similarity(a, a)
    assert np.allclose(same.spearman, 1) and np.allclose(same.ssim, 1)
    inverted = sanity.similarity(a, 1 - a)
    assert np.allclose(inverted.spearman, -1) and (inverted.ssim < 0).all()
    noise = sanity.similarity(a, rng.random((2, 32, 32)))
    assert (noise.spearman.abs() < 0.1).all() and (noise.ssim < 0.1).all()
    # constant images: only SSIM's luminance term is left, (2 c1 c2 + C1) / (c1^2 + c2^2 + C1)
    c1, c2, k = 0.2, 0.7, 0.01 ** 2
    assert sanity.ssim(np.full((16, 16), c1), np.full((16, 16), c2)) == pytest.approx((2 * c1 * c2 + k) / (c1 ** 2 + c2 ** 2 + k))
    assert sanity.spearman(np.ones((4, 4)), a[0, :4, :4]) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        sanity.similarity(a, a[:, :16])


@pytest.mark.parametrize("rho, s, expected", [
    ([0.1, 0.2], [0.1, 0.3], "passes"),
    ([0.9, 0.8], [0.1, 0.1], "fails"),  # rank order kept
    ([0.1, 0.1], [0.9, 0.7], "fails"),  # structure kept
    ([-0.9, -0.8], [0.1, 0.1], "fails"),  # an inverted map still depends on the same thing
])
def test_verdict_rule_returns_both_verdicts(rho, s, expected):
    assert sanity.verdict(rho, s) == expected


def test_verdict_refuses_empty_or_undefined():
    with pytest.raises(ValueError):
        sanity.verdict([], [])
    with pytest.raises(ValueError):
        sanity.verdict([np.nan], [0.1])


# ---------------------------------------------------------------- cascade

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 8)

    def forward(self, x):
        return self.head(self.body(self.stem(x / 255)).mean((2, 3)))


def test_blocks_run_from_the_embedding_down_and_cover_every_parameter():
    model = Tiny()
    blocks = sanity.cascade_blocks(model, {"stem": "stem", "body": "body"}, face_like_images(1, 16))
    assert blocks == [("head", ["head"]), ("body", ["body.0"]), ("stem", ["stem.0", "stem.1"])]
    owners = {n for n, m in model.named_modules() if list(m.parameters(recurse=False))}
    assert {m for _, names in blocks for m in names} == owners
    # parameter-free named layers (a ReLU, as DLIB's "stem") take the modules run before them
    relu = sanity.cascade_blocks(model, {"relu": "stem.2", "body": "body.1"}, face_like_images(1, 16))
    assert relu == [("head", ["head"]), ("body", ["body.0"]), ("relu", ["stem.0", "stem.1"])]
    with pytest.raises(ValueError, match="execution order"):
        sanity.cascade_blocks(model, {"body": "body", "stem": "stem"}, face_like_images(1, 16))


def test_randomise_keeps_each_tensors_scale_and_is_seeded():
    a, b = Tiny(), Tiny()
    before = a.body[0].weight.detach().clone()
    n = sanity.randomise_(a, ["body.0"], seed=5)
    sanity.randomise_(b, ["body.0"], seed=5)
    after = a.body[0].weight.detach()
    assert n == sum(p.numel() for p in a.body[0].parameters())
    assert torch.equal(after, b.body[0].weight)
    assert not torch.allclose(after, before)
    assert float(after.std()) == pytest.approx(float(before.std(unbiased=False)), rel=0.2)
    assert torch.equal(a.stem[0].weight, Tiny().stem[0].weight)  # other modules untouched


def test_stages_choice():
    assert sanity.stages(5) == [1, 2, 3, 4, 5]
    assert sanity.stages(10, 3) == [1, 6, 10]
    assert sanity.stages(3, 8) == [1, 2, 3]
    with pytest.raises(ValueError):
        sanity.stages(0)


def test_cascade_leaves_the_model_unchanged_and_maps_change(resnet):
    images = face_like_images(2, 64)
    state = {k: v.clone() for k, v in resnet.state_dict().items()}
    table, maps = sanity.cascading_randomisation(resnet, RESNET_LAYERS, images, own_target(resnet, images),
                                                 study_explainers(explainers=("leam", "gradcam", "srise")),
                                                 n_stages=3, seed=1, model_name="R", progress=False)
    for k, v in resnet.state_dict().items():
        assert torch.equal(v, state[k]), f"{k} of the original model changed"
    assert sorted(table.stage.unique()) == [0, 1, 3, 5]  # head + 4 layers = 5 blocks
    assert table.parameter_share.max() == pytest.approx(1.0)
    first = table[table.stage == 0]
    assert np.allclose(first.spearman, 1) and np.allclose(first.ssim, 1)
    last = table[table.stage == 5].groupby("explainer").spearman.mean()
    assert (last < 0.9).all()
    assert set(maps) == {"leam", "gradcam", "srise"} and set(maps["leam"]) == {0, 1, 3, 5}


def test_verdicts_from_explainers_that_ignore_or_use_the_weights(resnet):
    """The rule on real cascades: a 'map' that is the image itself fails, the model's gradient map passes."""
    images = face_like_images(2, 64)
    target = own_target(resnet, images)

    def image_only(model, x, tgt):  # ignores the model entirely
        return {"edges": x.mean(1).numpy()}

    def input_gradient(model, x, tgt):
        x = x.clone().requires_grad_(True)
        tgt(model(x)).sum().backward()
        return {"gradient": x.grad.abs().sum(1).numpy()}

    rows = []
    for explain in (image_only, input_gradient):
        cascade, _ = sanity.cascading_randomisation(resnet, RESNET_LAYERS, images, target, explain, progress=False)
        targets, _ = sanity.target_randomisation(resnet, images, target.reference, ["a", "b"], explain)
        rows.append(sanity.randomisation_verdicts(cascade.assign(model="R"), targets.assign(model="R")))
    verdicts = {(r.explainer, r.check): r.verdict for df in rows for r in df.itertuples()}
    assert verdicts[("edges", "model randomisation")] == "fails"
    assert verdicts[("edges", "target randomisation (impostor)")] == "fails"
    assert verdicts[("gradient", "model randomisation")] == "passes"


def test_target_randomisation_references():
    refs = torch.eye(3)
    imp = sanity.impostor_references(refs, ["b", "a", "b"])
    assert torch.equal(imp, torch.stack([refs[1], refs[0], refs[1]]))  # a -> b's first image, b -> a's
    with pytest.raises(ValueError, match="two people"):
        sanity.impostor_references(refs, ["a", "a", "a"])
    rand = sanity.random_references(4, 8, seed=2)
    assert torch.allclose(rand.norm(dim=1), torch.ones(4)) and torch.equal(rand, sanity.random_references(4, 8, 2))


def test_study_explainers_shapes_and_bad_names(resnet):
    images = face_like_images(2, 64)
    maps = study_explainers()(resnet, images, own_target(resnet, images))
    assert list(maps) == list(sanity.EXPLAINERS)
    for m in maps.values():
        assert m.shape == (2, 64, 64) and np.isfinite(m).all()
    assert np.allclose(maps["leam"].sum((1, 2)), 1, atol=1e-4)
    with pytest.raises(ValueError, match="unknown explainers"):
        study_explainers(explainers=("gradcam", "lime"))
    with pytest.raises(ValueError, match="cam_layer"):
        sanity.StudyExplainers(RESNET_LAYERS, "layer9", 64)


# ---------------------------------------------------------------- independent implementation: captum

def test_gradcam_equals_captum_layergradcam(resnet):
    """Our Grad-CAM (raw and as the sanity checks use it) vs captum 0.9's LayerGradCam: rel. tolerance 1e-5."""
    images = face_like_images(3, 64, seed=4)
    target = own_target(resnet, images)
    ours_raw = GradCAM(resnet, ["net.layer3"]).raw_maps(images, target)[0]
    cam = captum_attr.LayerGradCam(lambda x: target(resnet(x)), resnet.net.layer3)
    theirs = cam.attribute(images, relu_attributions=True)[:, 0].detach()
    assert theirs.shape == ours_raw.shape
    assert torch.allclose(ours_raw, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))
    up = captum_attr.LayerAttribution.interpolate(theirs[:, None], (64, 64), interpolate_mode="bilinear")[:, 0]
    seen = up.sum((1, 2)) > 0  # an all-zero map is made uniform by ours, undefined after scaling for captum's
    assert seen.sum() >= 2
    up = (up[seen] / up[seen].sum((1, 2), keepdim=True)).numpy()
    ours = study_explainers(explainers=("gradcam",))(resnet, images, target)["gradcam"][seen.numpy()]
    assert np.allclose(ours, up, rtol=1e-4, atol=1e-4 * float(up.max()))
