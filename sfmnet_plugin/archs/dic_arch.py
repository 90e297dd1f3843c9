"""DIC generator (Ma et al., "Deep Face Super-Resolution with Iterative Collaboration between Attentive Recovery and
Landmark Estimation", CVPR 2020).

Re-implemented from the facts in ``docs/fidelity.md`` Part DIC (official repository Maclory/Deep-Iterative-
Collaboration, MIT licence; ``code/networks/dic_arch.py`` and the files it calls). With the defaults, :class:`DIC`
is the released CelebA/Helen network (``test_DIC_CelebA.json``): 21,803,849 parameters (11,999,172 in the hourglass
``HG``) under the official state-dict names, so the released weights load as they are.

Data flow of the released network (``F`` = 48 features, ``T`` = 4 steps)::

    lr (B x 3 x 16 x 16, [0, 1]) - rgb_mean --> x                     (official data range: image - mean)
    inter = bilinear x8 (x)                                            B x 3 x 128 x 128
    conv_in 3x3 3 -> 4F, PReLU; PixelShuffle(2)                        B x F x 32 x 32   (LR features)
    step 0: first_block(features)                -> hidden             B x F x 32 x 32
    step t: block(features, hidden, merge(heatmap)) -> hidden          (heatmap attention, 5 components)
            sr_t = inter + conv_out(out(hidden))   out: deconv x4      B x 3 x 128 x 128
            heatmap, hg_hidden = HG(sr_t, hg_hidden)                   B x 68 x 32 x 32
    returns sr_T + rgb_mean (not clamped)

The official network takes and returns images with the dataset mean (0.509, 0.424, 0.378) subtracted
(``Normalize(mean, 1)`` in its data loaders); that shift lives inside :meth:`DIC.forward`, so the plugin's DIC
has the family's contract: LR face in [0, 1], SR out in [0, 1]. The hourglass sees the shifted SR image, as in
the official code. Unlike the other networks of the family DIC takes the 16x16 LR itself (no PIL upsampling):
its global residual is a bilinear upsampling inside the network.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.dic_blocks import (
    FeatureHeatmapFusingBlock,
    FeedbackBlock,
    FeedbackHourGlass,
    conv_block,
    deconv_block,
    merge_heatmaps,
)

# The per-channel mean the official data loaders subtract (rgb_range 1).
DIC_RGB_MEAN = (0.509, 0.424, 0.378)
# The official reconstruction deconvolution at x8: the LR features are already at 2x after the PixelShuffle.
OUT_KERNEL, OUT_STRIDE, OUT_PADDING = 8, 4, 2
# Component attention maps the recurrent block fuses (eyes, nose, mouth, silhouette).
NUM_ATTENTION_MAPS = 5


def official_init_(network: nn.Module) -> None:
    """The official ``init_weights(net, 'kaiming')``: (transposed) conv weights Kaiming-normal (fan-in, a = 0),
    biases 0; PReLU slopes keep their 0.2."""
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, a=0, mode='fan_in')
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@ARCH_REGISTRY.register()
class DIC(nn.Module):
    """DIC: a recurrent SR branch and a feedback-hourglass landmark branch that refine each other for ``num_steps``.

    Args:
        upscale: 8, the only factor the official network has (16 x 16 in, 128 x 128 out).
        num_features, num_groups, num_steps: SR branch width (48), projection groups per feedback block (6),
            recurrent steps (4).
        hg_num_feature, hg_num_keypoints: hourglass width (256) and landmarks (68).
        num_fusion_block: grouped residual blocks in the attention fusion (7).
        detach_attention: stop the gradient from the SR loss into the hourglass through the attention maps
            (official option, off in every released configuration).
        rgb_mean: the mean subtracted from the input and added back to the output (official DIC mean).
        official_init: re-initialise as the official training did before loading the pretrained hourglass
            (Kaiming-normal convs, zero biases).

    ``forward(lr)`` returns the final SR ``B x 3 x 8h x 8w`` in [0, 1] (not clamped). ``forward(lr,
    return_steps=True)`` returns ``(sr_steps, heatmap_steps)``: lists of ``num_steps`` SR images (same range) and
    landmark heatmaps (``B x K x 2h x 2w``, the hourglass output, one map per landmark), what the training losses
    need. The plain call skips the last step's hourglass pass (its heatmap does not change the SR image; the official
    network computes it anyway). No state is kept between calls: the same input gives the same output however
    often it is called.
    """

    def __init__(self, upscale: int = 8, num_features: int = 48, num_groups: int = 6, num_steps: int = 4,
                 hg_num_feature: int = 256, hg_num_keypoints: int = 68, num_fusion_block: int = 7,
                 in_channels: int = 3, out_channels: int = 3, detach_attention: bool = False,
                 rgb_mean=DIC_RGB_MEAN, official_init: bool = False):
        super().__init__()
        if upscale != 8:
            raise ValueError(f'DIC is an x8 network (upscale 8: 16x16 LR in, 128x128 out), got upscale={upscale!r}.')
        if num_steps < 1:
            raise ValueError(f'DIC num_steps must be at least 1, got {num_steps!r}.')
        if hg_num_keypoints not in (5, 68):
            raise ValueError(f'DIC merges 68 landmark heatmaps into its attention (or uses 5), got '
                             f'hg_num_keypoints={hg_num_keypoints!r}.')
        self.upscale = upscale
        self.num_steps = num_steps
        self.detach_attention = detach_attention
        self.register_buffer('rgb_mean', torch.tensor(rgb_mean, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)

        self.conv_in = conv_block(in_channels, 4 * num_features, 3)
        self.feat_in = nn.PixelShuffle(2)
        self.first_block = FeedbackBlock(num_features, num_groups, num_features)
        self.block = FeedbackBlock(num_features, num_groups, 2 * num_features,
                                   FeatureHeatmapFusingBlock(num_features, NUM_ATTENTION_MAPS, num_fusion_block))
        self.out = deconv_block(num_features, num_features, OUT_KERNEL, OUT_STRIDE, OUT_PADDING)
        self.conv_out = conv_block(num_features, out_channels, 3, act_type=None)
        self.HG = FeedbackHourGlass(hg_num_feature, hg_num_keypoints)
        if official_init:
            official_init_(self)

    def forward(self, lr: Tensor, return_steps: bool = False):
        """``B x 3 x h x w`` LR in [0, 1] -> SR ``B x 3 x 8h x 8w`` in [0, 1], or ``(sr_steps, heatmap_steps)``."""
        x = lr - self.rgb_mean
        inter = nn.functional.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
        features = self.feat_in(self.conv_in(x))
        sr_steps, heatmap_steps = [], []
        hidden = hg_hidden = heatmap = None
        for step in range(self.num_steps):
            if step == 0:
                hidden = self.first_block(features)
            else:
                hidden = self.block(features, hidden, merge_heatmaps(heatmap, self.detach_attention))
            sr = inter + self.conv_out(self.out(hidden))
            sr_steps.append(sr + self.rgb_mean)
            if return_steps or step < self.num_steps - 1:  # the last heatmap does not change the SR image
                heatmap, hg_hidden = self.HG(sr, hg_hidden)
                heatmap_steps.append(heatmap)
        if return_steps:
            return sr_steps, heatmap_steps
        return sr_steps[-1]


__all__ = ['DIC', 'DIC_RGB_MEAN']
