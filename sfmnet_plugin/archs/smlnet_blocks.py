"""Building blocks that SMLNet adds to SFMNet's (an unofficial design from the SMLNet abstract; see ``docs/smlnet.md``).

SMLNet's paper (Xie et al., IEEE TIP 2026) has published only its abstract; these blocks are this project's reading
of the names it gives, not the authors' code. Shapes use ``C = num_feat``.

* :class:`MFEB` - Multi-scale Feature Extraction Block: parallel dilated 3x3 paths with a cross-scale exchange
  (MSRN's multi-scale residual block, Li et al. ECCV 2018, with dilations instead of 5x5 kernels).
* :class:`SFIM` - Spatial-Frequency feature Interaction Module: two-way channel cross-attention between a spatial
  and a frequency feature (SFMNet's :class:`ChannelCrossAttention`, one module per direction) and a gated fusion
  added to the spatial feature.
* :class:`ConcatFusion` - the ablation of :class:`SFIM`: plain concatenation and a 3x3 convolution.
* :class:`MultiLevelAggregation` - aggregates the fused features of several U-Net levels at full resolution.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from basicsr.archs.arch_util import default_init_weights
from torch import Tensor, nn

from sfmnet_plugin.archs.sfmnet_blocks import ChannelCrossAttention

# BasicSR's convention for residual blocks (EDSR, MSRResNet): Kaiming-normal weights scaled by 0.1, zero biases, so
# every residual branch starts close to the identity. On the demo faces (x8, C = 18, 20 Adam steps) this took SMLNet
# from 21.10 to 21.47 dB (bicubic: 21.55); PyTorch's default initialisation makes the 14 residual additions grow
# the features two- to three-fold and the first SR images much worse than bicubic.
RESIDUAL_INIT_SCALE = 0.1


class MFEB(nn.Module):
    """Multi-scale Feature Extraction Block: parallel dilated paths that exchange features, plus a residual.

    ``B x C x H x W -> B x C x H x W``. With ``n = len(dilations)`` paths of ``C/2`` channels each:

    1. path ``k``: ``p_k = relu(conv3x3_{dilation d_k}(x))``, ``C -> C/2`` (receptive field ``2 d_k + 1``);
    2. exchange: every path sees every scale, ``q_k = relu(conv3x3_{d_k}(cat[p_1 .. p_n]))``, ``nC/2 -> C/2``;
    3. ``out = x + conv1x1(cat[q_1 .. q_n])``, ``nC/2 -> C``.

    The default dilations (1, 2, 3) give receptive fields of 3, 5 and 7 pixels per step (up to 13 over the block)
    at the parameter cost of 3x3 kernels. ``dilations=(1, 1, 1)`` is the single-scale ablation: the same
    parameters and operations, one receptive field.
    """

    def __init__(self, num_feat: int, dilations: Sequence[int] = (1, 2, 3)):
        super().__init__()
        if num_feat % 2:
            raise ValueError(f'MFEB splits num_feat into paths of num_feat / 2 channels: num_feat={num_feat} is odd.')
        dilations = tuple(int(d) for d in dilations)
        if not dilations or min(dilations) < 1:
            raise ValueError(f'MFEB dilations must be a non-empty list of positive integers, got {dilations}.')
        self.dilations = dilations
        path_feat = num_feat // 2
        mixed_feat = len(dilations) * path_feat
        self.extract = nn.ModuleList(
            [nn.Conv2d(num_feat, path_feat, 3, padding=d, dilation=d) for d in dilations])
        self.exchange = nn.ModuleList(
            [nn.Conv2d(mixed_feat, path_feat, 3, padding=d, dilation=d) for d in dilations])
        self.fuse = nn.Conv2d(mixed_feat, num_feat, 1)
        default_init_weights(self, RESIDUAL_INIT_SCALE)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([F.relu(conv(x)) for conv in self.extract], dim=1)  # B x nC/2 x H x W
        mixed = torch.cat([F.relu(conv(mixed)) for conv in self.exchange], dim=1)  # B x nC/2 x H x W
        return x + self.fuse(mixed)


class SFIM(nn.Module):
    """Spatial-Frequency feature Interaction Module: two-way cross-attention, gated fusion, spatial residual.

    ``forward(spatial, frequency)``, both ``B x C x H x W`` -> ``B x C x H x W`` (the new spatial feature):

    1. ``s = conv1x1(spatial)``, ``f = conv1x1(frequency)``;
    2. ``s' = s + attn_sf(s, f)`` (spatial queries, frequency keys/values) and ``f' = f + attn_fs(f, s)``
       (frequency queries, spatial keys/values): two :class:`ChannelCrossAttention` modules, one per direction
       (SFMNet's block shares one module for both and never calls its second);
    3. ``[g_s, g_f] = sigmoid(conv1x1(prelu(conv3x3(cat[s', f']))))``, ``2C -> C -> 2C``, per pixel and channel;
    4. ``out = spatial + s' * g_s + f' * g_f``: the fused complement is *added* to the spatial feature, so the
       spatial branch's local texture keeps an identity path (SFMNet replaces the spatial feature instead).
    """

    def __init__(self, num_feat: int, num_heads: int = 8):
        super().__init__()
        self.spatial_proj = nn.Conv2d(num_feat, num_feat, 1)
        self.frequency_proj = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_from_frequency = ChannelCrossAttention(num_feat, num_heads)
        self.frequency_from_spatial = ChannelCrossAttention(num_feat, num_heads)
        self.gate = nn.Sequential(
            nn.Conv2d(2 * num_feat, num_feat, 3, padding=1),
            nn.PReLU(),
            nn.Conv2d(num_feat, 2 * num_feat, 1),
            nn.Sigmoid(),
        )
        default_init_weights([self.spatial_proj, self.frequency_proj], RESIDUAL_INIT_SCALE)  # the added complement

    def forward(self, spatial: Tensor, frequency: Tensor) -> Tensor:
        s = self.spatial_proj(spatial)
        f = self.frequency_proj(frequency)
        s, f = s + self.spatial_from_frequency(s, f), f + self.frequency_from_spatial(f, s)
        spatial_gate, frequency_gate = self.gate(torch.cat([s, f], dim=1)).chunk(2, dim=1)
        return spatial + s * spatial_gate + f * frequency_gate


class ConcatFusion(nn.Module):
    """Ablation of :class:`SFIM`: ``spatial + conv3x3(cat[spatial, frequency])``, ``2C -> C``; no attention, no gate.

    ``forward(spatial, frequency)``, both ``B x C x H x W`` -> ``B x C x H x W``.
    """

    def __init__(self, num_feat: int):
        super().__init__()
        self.fuse = nn.Conv2d(2 * num_feat, num_feat, 3, padding=1)
        default_init_weights(self.fuse, RESIDUAL_INIT_SCALE)  # initialised like SFIM's residual complement

    def forward(self, spatial: Tensor, frequency: Tensor) -> Tensor:
        return spatial + self.fuse(torch.cat([spatial, frequency], dim=1))


class MultiLevelAggregation(nn.Module):
    """Aggregate features of several U-Net levels at the finest level's resolution.

    ``forward(features)``: a list of ``num_levels`` tensors ``B x C x h_k x w_k``, coarse to fine, the last one at the
    output resolution ``H x W`` -> ``B x C x H x W``. Each coarser feature is resized bilinearly to ``H x W``; all
    are concatenated (``num_levels * C`` channels) and mixed by a 1x1 conv that is added to the finest feature.
    """

    def __init__(self, num_feat: int, num_levels: int):
        super().__init__()
        self.num_levels = num_levels
        self.fuse = nn.Conv2d(num_levels * num_feat, num_feat, 1)
        default_init_weights(self.fuse, RESIDUAL_INIT_SCALE)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if len(features) != self.num_levels:
            raise ValueError(f'MultiLevelAggregation expects {self.num_levels} features, got {len(features)}.')
        finest = features[-1]
        size = finest.shape[-2:]
        resized = [F.interpolate(feature, size=size, mode='bilinear', align_corners=False)
                   for feature in features[:-1]]
        return finest + self.fuse(torch.cat([*resized, finest], dim=1))
