"""The two LightCNN-9 discriminators of SFMNet's GAN stage (docs/fidelity.md §A6.1 and §A6.2).

Both share one feature stack built from max-feature-map (MFM) layers: a convolution or linear layer with
twice the wanted outputs whose two halves are reduced by an element-wise maximum, the only nonlinearity of
the stack. :class:`SFMNetSpatialDiscriminator` looks at the image, :class:`SFMNetFrequencyDiscriminator` at
its Fourier amplitude and phase.

The official networks hard-code the flatten size of a 128x128 input. These keep that classifier for the
configured ``input_size`` (so official weights fit, see ``convert_official_discriminator_state_dict``) and
accept other sizes by adaptive max pooling the final feature map to the official layout.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.spectral import safe_angle


class MFMConv2d(nn.Module):
    """Max-feature-map convolution: ``B x in_ch x H x W -> B x out_ch x H x W`` (conv to 2*out_ch, max of halves)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 2 * out_ch, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        first, second = self.conv(x).chunk(2, dim=1)
        return torch.maximum(first, second)


class MFMLinear(nn.Module):
    """Max-feature-map linear layer: ``B x in_features -> B x out_features``."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * out_features)

    def forward(self, x: Tensor) -> Tensor:
        first, second = self.linear(x).chunk(2, dim=1)
        return torch.maximum(first, second)


class MFMGroup(nn.Module):
    """LightCNN "group": 1x1 MFM conv (``in_ch -> in_ch``), then 3x3 MFM conv to ``out_ch``.

    ``B x in_ch x H x W -> B x out_ch x H x W``.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1x1 = MFMConv2d(in_ch, in_ch, 1)
        self.conv3x3 = MFMConv2d(in_ch, out_ch, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3x3(self.conv1x1(x))


def _halved_with_ceil(size: int, times: int) -> int:
    """Spatial size after ``times`` 2x2/stride-2 max pools with ``ceil_mode=True``."""
    for _ in range(times):
        size = -(-size // 2)
    return size


class LightCNN9Discriminator(nn.Module):
    """LightCNN-9 feature stack plus an MFM classifier; ``B x num_in_ch x H x W -> B x 1`` logits.

    ``features`` (shapes for a 128x128 image): MFM conv 5x5 -> 48 (128^2), pool (64^2), group -> 96, pool (32^2),
    group -> 192, pool (16^2), group -> 128, group -> 128, pool (8^2). The pools are 2x2/2 with ``ceil_mode``.
    ``classifier``: flatten, MFM linear -> 256, LeakyReLU(0.2), linear -> 1. No normalisation layers.

    ``feature_size`` is the final map size of the input the classifier was built for; any other map size is
    brought to it by adaptive max pooling first (the official code only accepts that one size).
    """

    def __init__(self, num_in_ch: int, feature_size):
        super().__init__()
        self.feature_size = tuple(feature_size)
        self.features = nn.Sequential(
            MFMConv2d(num_in_ch, 48, 5),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            MFMGroup(48, 96),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            MFMGroup(96, 192),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            MFMGroup(192, 128),
            MFMGroup(128, 128),
            nn.MaxPool2d(2, 2, ceil_mode=True),
        )
        self.adapt_to_feature_size = nn.AdaptiveMaxPool2d(self.feature_size)
        self.classifier = nn.Sequential(
            MFMLinear(128 * self.feature_size[0] * self.feature_size[1], 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)
        if tuple(features.shape[-2:]) != self.feature_size:
            features = self.adapt_to_feature_size(features)
        return self.classifier(features.flatten(1))


@ARCH_REGISTRY.register()
class SFMNetSpatialDiscriminator(LightCNN9Discriminator):
    """Official ``network_9layers`` on the image itself. ``B x 3 x H x W`` in [0, 1] -> ``B x 1`` logits.

    5,485,921 parameters at the official ``input_size=128`` (flatten 128 x 8 x 8 = 8192).
    """

    def __init__(self, num_in_ch: int = 3, input_size: int = 128):
        final_size = _halved_with_ceil(input_size, 4)
        super().__init__(num_in_ch, (final_size, final_size))


@torch.compiler.disable  # inductor (torch 2.14) cannot compile the backward of abs + angle of one spectrum
def amplitude_and_phase(images: Tensor) -> Tensor:
    """``B x C x H x W`` -> ``cat([|X|, angle(X)], 1)`` of ``X = rfft2(images)``: ``B x 2C x H x (W//2+1)``, float32."""
    with torch.autocast(device_type=images.device.type, enabled=False):
        if images.dtype in (torch.float16, torch.bfloat16):
            images = images.float()
        spectrum = torch.fft.rfft2(images, norm='backward')
        return torch.cat([spectrum.abs(), safe_angle(spectrum)], dim=1)


@ARCH_REGISTRY.register()
class SFMNetFrequencyDiscriminator(LightCNN9Discriminator):
    """Official ``network_9layers_fft``: the same stack on the image's Fourier amplitude and phase.

    ``B x 3 x H x W`` -> ``X = rfft2(img, norm='backward')`` -> ``cat([|X|, angle(X)], 1)``: ``B x 6 x H x (W//2+1)``
    (raw amplitude, DC up to H*W; phase in (-pi, pi]) -> ``B x 1`` logits. 3,920,257 parameters at the official
    ``input_size=128`` (6 x 128 x 65 spectrum, flatten 128 x 8 x 5 = 5120).

    The spectrum is computed in float32 with autocast off (no half FFT on CPU; cuFFT's needs power-of-two
    sizes); the convolutions after it follow autocast. With float16 autocast the raw DC amplitude overflows for
    inputs larger than about 255x255 (65504 < H*W); use bfloat16 there.
    """

    def __init__(self, num_in_ch: int = 3, input_size: int = 128):
        final_size = (_halved_with_ceil(input_size, 4), _halved_with_ceil(input_size // 2 + 1, 4))
        super().__init__(2 * num_in_ch, final_size)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(amplitude_and_phase(x))

