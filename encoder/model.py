"""The small convolutional network that turns an image into a latent vector (and back).

Small on purpose: the paper's point is that images are compressed once, ahead of time, so real-time
training touches only vectors; the encoder itself must train in minutes on two CPU cores. Strided 3x3
convolutions halve the image until it is at most 8 pixels wide (28 -> 14 -> 7), then one linear layer
gives the latent vector. The decoder mirrors it with transposed convolutions.
"""

from __future__ import annotations

import torch
from torch import nn


def _plan(size: int) -> tuple[list[int], int]:
    """Channel widths of the stride-2 stages for an input side ``size``, and the final map side."""
    if size < 8:
        raise ValueError(f"image size must be at least 8 pixels, not {size}")
    widths: list[int] = []
    side = size
    while side > 8 or len(widths) < 2:
        widths.append(min(32 * 2 ** len(widths), 128))
        side = (side + 1) // 2
    return widths, side


def _conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConvEncoder(nn.Module):
    """Image ``[B, channels, size, size]`` in [0, 1] -> latent ``[B, latent_dim]``.

    Args:
        pre_convs: a stride-1 3x3 conv before each stride-2 one (half width at full resolution). In the
            labeling study's research runs it lifted the contrastive encoder's 10-NN class purity on MNIST
            from 0.89 to 0.92 and logistic regression on 100 labels by about 2 points, for about 1.2x the
            CPU per epoch. Encoders saved before it existed load with ``pre_convs=False``.
    """

    def __init__(self, channels: int = 1, size: int = 28, latent_dim: int = 32, pre_convs: bool = True):
        super().__init__()
        self.channels, self.size, self.latent_dim, self.pre_convs = channels, size, latent_dim, pre_convs
        widths, side = _plan(size)
        layers: list[nn.Module] = []
        cin = channels
        for i, w in enumerate(widths):
            if pre_convs:
                pre = w // 2 if i == 0 else w
                layers += _conv(cin, pre, 1)
                cin = pre
            layers += _conv(cin, w, 2)
            cin = w
        self.features = nn.Sequential(*layers)
        self.flat_dim = cin * side * side
        self.fc = nn.Linear(self.flat_dim, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


class ConvDecoder(nn.Module):
    """Latent ``[B, latent_dim]`` -> image ``[B, channels, size, size]`` in [0, 1] (sigmoid output)."""

    def __init__(self, channels: int = 1, size: int = 28, latent_dim: int = 32):
        super().__init__()
        self.channels, self.size = channels, size
        widths, side = _plan(size)
        self.side, self.top = side, widths[-1]
        self.fc = nn.Linear(latent_dim, self.top * side * side)
        layers: list[nn.Module] = []
        rev = list(reversed(widths))
        for cin, cout in zip(rev, rev[1:], strict=False):
            layers += [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.ConvTranspose2d(rev[-1], channels, 3, stride=2, padding=1, output_padding=1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc(z)).view(-1, self.top, self.side, self.side)
        x = self.deconv(x)
        if x.shape[-1] != self.size:  # odd sizes: the mirror overshoots by a few pixels
            x = x[..., : self.size, : self.size]
        return torch.sigmoid(x)


class ConvAutoencoder(nn.Module):
    """The paper's autoencoder: encoder then decoder, trained to reproduce its input."""

    def __init__(self, channels: int = 1, size: int = 28, latent_dim: int = 32):
        super().__init__()
        self.encoder = ConvEncoder(channels, size, latent_dim)
        self.decoder = ConvDecoder(channels, size, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
