"""A tiny face-model stand-in with named layers (the FaceModel interface the explainers and timers need)."""
from types import SimpleNamespace

import torch
from torch import nn


class TinyFace(nn.Module):
    """Two conv layers and a linear embedding: 16x16 RGB in [0, 255] -> 16-d embedding; layers c1, c2."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 16)
        self.spec = SimpleNamespace(name="TINY", input_size=16)
        self.layers = {"c1": "conv1", "c2": "conv2"}

    def layer_path(self, name):
        return self.layers[name]

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x / 255 - 0.5)))).flatten(1))
