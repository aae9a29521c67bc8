"""LEAM and the Grad-CAM family, every hooked layer from one forward and one backward pass.

For each layer l with activation A (C, h, w) and gradient G = ds/dA of the target score s:
M_l = ReLU(sum_c W_c * A_c), where the weighting W(A, G) is what distinguishes the methods:
``"elementwise"`` W = ReLU(G) (LEAM, and LayerCAM by definition), ``"gradcam"`` W_c = mean(G_c),
``"gradcam++"`` pytorch-grad-cam's Grad-CAM++ weights. Each map is, with ``antialias=True``,
low-passed at its own grid (:func:`facexai.explain.base.antialias_map`, against the stride
lattice), upsampled bilinearly to the input size and scaled to sum 1 (an all-zero map becomes
uniform, with a logged warning and a count in ``n_uniform``; NaN raises). The structure follows
pytorch-grad-cam's base_cam.py.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from facexai import passes
from facexai.explain.base import (
    LayerSpec,
    check_images,
    model_device,
    normalise_maps,
    resolve_layers,
    upsample_maps,
)

#: (A, G) -> weights W, full size or one per channel; always a new tensor (the map is summed in place on it)
Weighting = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def elementwise_weights(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """LEAM / LayerCAM: every activation weighted by its own positive gradient, ReLU(G)."""
    return grads.clamp_min(0)


def gradcam_weights(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM: one weight per channel, the spatial mean of its gradient."""
    return grads.mean(dim=(2, 3), keepdim=True)


def gradcampp_weights(acts: torch.Tensor, grads: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Grad-CAM++ channel weights, pytorch-grad-cam's formula (eq. 19 of arXiv:1710.11063)."""
    g2 = grads.pow(2)
    g3 = g2 * grads
    sum_acts = acts.sum(dim=(2, 3), keepdim=True)
    aij = torch.where(grads != 0, g2 / (2 * g2 + sum_acts * g3 + eps), 0.0)
    return (grads.clamp_min(0) * aij).sum(dim=(2, 3), keepdim=True)


WEIGHTINGS: dict[str, Weighting] = {
    "elementwise": elementwise_weights,
    "gradcam": gradcam_weights,
    "gradcam++": gradcampp_weights,
}


def _weighted_sum(weights: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c W_c * A_c), (N, h, w). A full-size W is multiplied in place: on the early layers' large
    activations that is 2-3x faster than a fresh product (no new pages), and bit-identical."""
    product = weights.mul_(acts) if weights.shape == acts.shape else weights * acts
    return product.sum(1).clamp_min_(0)


class BaseCAM:
    """Gradient-weighted activation maps of many layers from one forward + one backward pass.

    ``explainer(images, target)`` -> float32 (N, L, H, W), each map summing to 1, layers in the
    given order (``layer_names``). ``target`` maps the embedding batch (N, D) to scores (N,).
    The model is put in eval mode. Forward hooks keep each layer's output; the gradients come
    from one ``torch.autograd.grad`` of sum(scores) with respect to those outputs (equivalent
    to tensor hooks plus ``backward()``, but no parameter gradients are computed or stored).
    ``antialias`` low-passes each layer's map at its own grid before upsampling (default off:
    the published definitions, which pytorch-grad-cam reproduces).
    """

    weighting = ""  # key of WEIGHTINGS; set by each subclass

    def __init__(self, model: nn.Module, layers: LayerSpec, input_size: int | Sequence[int] | None = None,
                 antialias: bool = False):
        self.model = model.eval()
        self.layers = resolve_layers(model, layers)
        self.layer_names = list(self.layers)
        named = getattr(model, "layers", None)  # a FaceModel's {name: path} of named layers, earliest first
        named = list(named.values()) if isinstance(named, dict) else []
        reaches_first = bool(named) and model.get_submodule(named[0]) in self.layers.values()
        self.grad_kind = "grad_all_layers" if reaches_first else "grad"  # how its passes are counted (facexai.passes)
        self.input_size = input_size
        self.antialias = bool(antialias)
        self.n_uniform = 0  # all-zero maps replaced by uniform ones, over all calls

    def raw_maps(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
        """ReLU(sum_c W * A) per layer at the layer's own resolution, each (N, h, w)."""
        return self._raw_maps(check_images(images, self.input_size).to(model_device(self.model)), target)

    def __call__(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return self.weighted_maps(images, target, [self.weighting])[self.weighting]

    def weighted_maps(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor],
                      weightings: Sequence[str], layers_of: Mapping[str, Sequence[int]] | None = None
                      ) -> dict[str, torch.Tensor]:
        """Maps (N, L, H, W) of several weightings (keys of WEIGHTINGS) from the same forward and backward pass;
        ``layers_of`` {weighting: layer indices} makes a weighting's maps at those layers only (default all)."""
        unknown = [w for w in weightings if w not in WEIGHTINGS]
        if unknown:
            raise ValueError(f"unknown weightings {unknown}; valid: {list(WEIGHTINGS)}")
        images = check_images(images, self.input_size).to(model_device(self.model))
        acts, grads = self._activations_and_gradients(images, target)
        out = {}
        for weighting in weightings:
            keep = list((layers_of or {}).get(weighting, range(len(acts))))
            maps = upsample_maps(self._weigh([acts[i] for i in keep], [grads[i] for i in keep], weighting,
                                             [self.layer_names[i] for i in keep]), images.shape[-2:], self.antialias)
            out[weighting], n_zero = normalise_maps(maps, f"{type(self).__name__} map")
            self.n_uniform += n_zero
        return out

    def activations_and_gradients(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]
                                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every hooked layer's activation A and gradient dS/dA (N, C, h, w), layers in order, from the one
        forward and one backward pass the maps use (for statistics other than maps, e.g. per channel)."""
        return self._activations_and_gradients(check_images(images, self.input_size).to(model_device(self.model)),
                                               target)

    def _raw_maps(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
        return self._weigh(*self._activations_and_gradients(images, target), self.weighting, self.layer_names)

    def _weigh(self, acts: list[torch.Tensor], grads: list[torch.Tensor], weighting: str,
               names: Sequence[str]) -> list[torch.Tensor]:
        weigh = WEIGHTINGS[weighting]
        maps = [_weighted_sum(weigh(a, g), a) for a, g in zip(acts, grads)]
        for name, cam in zip(names, maps):
            if not torch.isfinite(cam).all():
                raise FloatingPointError(f"layer {name!r}: the map contains NaN or inf")
        return maps

    def _activations_and_gradients(self, images, target) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        seen: dict[str, list[torch.Tensor]] = {name: [] for name in self.layer_names}
        versions: dict[str, int] = {}

        def hook(name: str):
            def store(module, inputs, output):
                seen[name].append(output)
                if isinstance(output, torch.Tensor):
                    versions[name] = output._version
            return store

        handles = [layer.register_forward_hook(hook(name)) for name, layer in self.layers.items()]
        try:
            with torch.enable_grad(), passes.grad_kind(self.grad_kind):
                embeddings = self.model(images.detach().requires_grad_(True))
        except RuntimeError as err:
            raise ValueError(f"{type(self.model).__name__} failed on images of shape {tuple(images.shape)} "
                             f"(wrong size for the model? pass input_size to check): {err}") from err
        finally:
            for handle in handles:
                handle.remove()
        acts = [self._checked_activation(name, outs, versions) for name, outs in seen.items()]
        with torch.enable_grad():
            scores = target(embeddings)
        if scores.shape != (len(images),):
            raise ValueError(f"target must return one score per image, shape ({len(images)},), "
                             f"got {tuple(scores.shape)}")
        grads = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
        for name, grad in zip(self.layer_names, grads):
            if grad is None:
                raise ValueError(f"layer {name!r} does not influence the target score")
        return [a.detach() for a in acts], list(grads)

    def _checked_activation(self, name: str, outputs: list, versions: dict[str, int]) -> torch.Tensor:
        if len(outputs) != 1:
            raise ValueError(f"layer {name!r} ran {len(outputs)} times in one forward pass; "
                             "hook a module that runs exactly once")
        act = outputs[0]
        if not isinstance(act, torch.Tensor) or act.ndim != 4:
            shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
            raise ValueError(f"layer {name!r} must output a 4-D activation (N, C, h, w), got {shape}")
        if act._version != versions[name]:
            raise ValueError(f"layer {name!r}: its output is modified in place later in the forward "
                             "pass (e.g. by ReLU(inplace=True)); hook the module after it")
        return act


class LEAM(BaseCAM):
    """LEAM: elementwise-weighted maps M = ReLU(sum_c ReLU(G_c) * A_c) of every layer at once.

    ``weighting`` swaps in ``"gradcam"`` or ``"gradcam++"`` channel weights instead.
    """

    def __init__(self, model: nn.Module, layers: LayerSpec, input_size: int | Sequence[int] | None = None,
                 weighting: str = "elementwise", antialias: bool = False):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; valid: {list(WEIGHTINGS)}")
        super().__init__(model, layers, input_size, antialias)
        self.weighting = weighting


class LayerCAM(BaseCAM):
    """LayerCAM (Jiang et al. 2021): ReLU(G) * A summed over channels, identical to LEAM's weighting."""

    weighting = "elementwise"


class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al. 2017): channel weights = spatial mean of the gradient."""

    weighting = "gradcam"


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018), weights as in pytorch-grad-cam."""

    weighting = "gradcam++"

