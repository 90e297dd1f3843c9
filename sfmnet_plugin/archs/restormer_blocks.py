"""Restormer's channel LayerNorm and gated feed-forward (Zamir et al., "Restormer: Efficient Transformer for
High-Resolution Image Restoration", CVPR 2022), as the official CTCNet (wsxuzixiang/CTCNet) and WFEN (PRIS-CV/WFEN)
both build them: the same layers under the same parameter names (``body.weight``, ``body.bias``; ``project_in``,
``dwconv``, ``project_out``), so the released state dicts of both load into these modules.
"""
import torch.nn.functional as F
from torch import Tensor, nn

# The official feed-forward's hidden width: int(channels * 2.66) per half of the gated pair (CTCNet: 85, 170, 340).
FFN_EXPANSION = 2.66
LAYER_NORM_EPS = 1e-5


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of every pixel (biased variance, eps 1e-5), as the official ``LayerNorm``
    ('WithBias'): ``B x C x H x W`` -> same. The affine parameters live in ``body`` (official names)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GatedFeedForward(nn.Module):
    """Restormer's GDFN: 1x1 conv to ``2 * hidden``, 3x3 depth-wise conv, ``gelu(first half) * second half``, 1x1
    conv back; ``hidden = int(channels * 2.66)``, no biases."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = int(channels * FFN_EXPANSION)
        self.project_in = nn.Conv2d(channels, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)
