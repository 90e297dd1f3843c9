"""Building blocks of DIC (Ma et al., CVPR 2020): SRFBN-style feedback blocks, the heatmap-attention fusion block
and the feedback hourglass landmark estimator.

Re-implemented from the facts in ``docs/fidelity.md`` Part DIC (official repository Maclory/Deep-Iterative-
Collaboration, ``code/networks/blocks.py``, ``srfbn_arch.py``, ``srfbn_hg_arch.py``,
``modules/StackedHourGlass.py``). Module names and nesting follow the official ones, so the official state-dict keys
are the plugin's: every official ``ConvBlock``/``DeconvBlock`` is an ``nn.Sequential`` of the (de)convolution and
its activation (keys ``.0.weight``, ``.1.weight`` for a PReLU), and every residual block keeps its official
``conv_block``/``skip_layer``/``res`` indices.

Unlike the official blocks, nothing here keeps state between calls: the feedback block takes its previous output
as an argument (``last_hidden``) instead of reading an attribute left by the previous call.
"""
import torch
from torch import Tensor, nn

# One PReLU parameter initialised at 0.2, LeakyReLU slope 0.2: the official activation() defaults.
ACTIVATION_SLOPE = 0.2
# Feedback-block (de)convolutions at x8: kernel 12, stride 8, padding 2 (32 -> 256 -> 32 at the released size).
PROJECTION_KERNEL, PROJECTION_STRIDE, PROJECTION_PADDING = 12, 8, 2


def _activation(act_type):
    if act_type == 'prelu':
        return nn.PReLU(num_parameters=1, init=ACTIVATION_SLOPE)
    if act_type == 'lrelu':
        return nn.LeakyReLU(ACTIVATION_SLOPE, inplace=True)
    raise ValueError(f"DIC activation must be 'prelu' or 'lrelu', got {act_type!r}.")


def conv_block(in_ch, out_ch, kernel_size, stride=1, padding=None, act_type='prelu', groups=1) -> nn.Sequential:
    """Official ``ConvBlock`` without norm: conv (padding ``(k - 1) // 2`` unless given), then the activation."""
    padding = (kernel_size - 1) // 2 if padding is None else padding
    layers = [nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, groups=groups)]
    if act_type is not None:
        layers.append(_activation(act_type))
    return nn.Sequential(*layers)


def deconv_block(in_ch, out_ch, kernel_size, stride, padding, act_type='prelu') -> nn.Sequential:
    """Official ``DeconvBlock`` without norm: transposed conv, then the activation."""
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride, padding), _activation(act_type))


class FeedbackBlock(nn.Module):
    """SRFBN's feedback block: ``compress_in`` then ``num_groups`` up/down projection groups with dense links.

    ``compress_in`` takes ``compress_in_channels`` (the official first block: the LR features alone,
    ``num_features``; the recurrent block: the LR features concatenated with the last output, ``2 num_features``).
    With a ``fusion_block`` (the recurrent block of DIC) the compressed features go through the heatmap
    attention before the projections.
    """

    def __init__(self, num_features: int, num_groups: int, compress_in_channels: int, fusion_block=None):
        super().__init__()
        self.num_groups = num_groups
        self.compress_in = conv_block(compress_in_channels, num_features, 1)
        self.upBlocks = nn.ModuleList()
        self.downBlocks = nn.ModuleList()
        self.uptranBlocks = nn.ModuleList()
        self.downtranBlocks = nn.ModuleList()
        for idx in range(num_groups):
            self.upBlocks.append(deconv_block(num_features, num_features, PROJECTION_KERNEL, PROJECTION_STRIDE,
                                              PROJECTION_PADDING))
            self.downBlocks.append(conv_block(num_features, num_features, PROJECTION_KERNEL, PROJECTION_STRIDE,
                                              PROJECTION_PADDING))
            if idx > 0:
                self.uptranBlocks.append(conv_block(num_features * (idx + 1), num_features, 1))
                self.downtranBlocks.append(conv_block(num_features * (idx + 1), num_features, 1))
        self.compress_out = conv_block(num_groups * num_features, num_features, 1)
        if fusion_block is not None:
            self.fusion_block = fusion_block

    def forward(self, x: Tensor, last_hidden: Tensor = None, heatmap: Tensor = None) -> Tensor:
        """``x``: LR features; ``last_hidden``: the previous step's output (recurrent block only); ``heatmap``: the
        5-channel attention (blocks with a fusion block only). Returns ``B x num_features x h x w``."""
        if last_hidden is not None:
            x = torch.cat((x, last_hidden), dim=1)
        x = self.compress_in(x)
        if heatmap is not None:
            x = self.fusion_block(x, heatmap)
        lr_features = [x]
        hr_features = []
        for idx in range(self.num_groups):
            low = torch.cat(lr_features, 1)
            if idx > 0:
                low = self.uptranBlocks[idx - 1](low)
            hr_features.append(self.upBlocks[idx](low))
            high = torch.cat(hr_features, 1)
            if idx > 0:
                high = self.downtranBlocks[idx - 1](high)
            lr_features.append(self.downBlocks[idx](high))
        return self.compress_out(torch.cat(lr_features[1:], 1))  # the input x is left out


class GroupedResBlock(nn.Module):
    """Official ``ResBlock`` of the fusion block: ``x + conv(lrelu(conv(x)))``, grouped 3x3 convs (key ``res``)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=groups),
            nn.LeakyReLU(ACTIVATION_SLOPE, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, groups=groups))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res(x)


class FeatureHeatmapFusingBlock(nn.Module):
    """Attentive fusion: one feature group per facial component, weighted by a softmax over the heatmaps.

    ``B x C x h x w`` features -> 1x1 conv to ``num_heatmap * C`` -> ``num_block`` grouped residual blocks ->
    ``num_heatmap`` groups of ``C`` channels, each multiplied by its channel of ``softmax(heatmap, dim=1)``, summed.
    """

    def __init__(self, num_features: int, num_heatmap: int, num_block: int):
        super().__init__()
        self.num_heatmap = num_heatmap
        channels = num_features * num_heatmap
        self.conv_in = conv_block(num_features, channels, 1, act_type='lrelu')
        self.resnet = nn.Sequential(*[GroupedResBlock(channels, num_heatmap) for _ in range(num_block)])

    def forward(self, feature: Tensor, heatmap: Tensor) -> Tensor:
        if heatmap.size(1) != self.num_heatmap:
            raise ValueError(f'DIC fusion block expects {self.num_heatmap} attention maps, got {heatmap.size(1)}.')
        batch, height, width = feature.size(0), feature.size(-2), feature.size(-1)
        feature = self.resnet(self.conv_in(feature)).view(batch, self.num_heatmap, -1, height, width)
        attention = torch.softmax(heatmap, dim=1).unsqueeze(2)
        return (feature * attention).sum(1)


# Official 68-point groups of merge_heatmap_5: left eye, right eye, nose, mouth, face silhouette (+ eyebrows).
HEATMAP_GROUPS_68 = (range(36, 42), range(42, 48), range(27, 36), range(48, 68), range(0, 27))
# merge_heatmap_5 divides each heatmap by its spatial maximum, but never by less than this.
HEATMAP_MIN_PEAK = 0.05


def merge_heatmaps(heatmap: Tensor, detach: bool = False) -> Tensor:
    """68 landmark heatmaps -> 5 component attention maps (official ``merge_heatmap_5``); 5 maps are only scaled.

    Each map is divided by its own peak (at least 0.05), then the maps of each component are summed.
    """
    peak = heatmap.amax(dim=(2, 3), keepdim=True).clamp_min(HEATMAP_MIN_PEAK)
    heatmap = heatmap / peak
    if heatmap.size(1) == 68:
        heatmap = torch.stack([heatmap[:, group.start:group.stop].sum(1) for group in HEATMAP_GROUPS_68], dim=1)
    elif heatmap.size(1) != 5:
        raise ValueError(f'DIC merges 68 landmark heatmaps (or takes 5), got {heatmap.size(1)}.')
    return heatmap.detach() if detach else heatmap


class ResidualBlock(nn.Module):
    """Hourglass residual block (official ``ResidualBlock``; keys ``conv_block``, ``skip_layer``).

    Without BatchNorm (DIC's feedback hourglass, ``need_bn=False``): 1x1 to ``out/2``, ReLU, 3x3, 1x1 to ``out``;
    the 3x3 conv is NOT followed by a ReLU (the official code drops that ReLU together with the BatchNorm), and the
    skip is a bare 1x1 conv when the widths differ. With BatchNorm (the official evaluation hourglass): each conv is
    followed by BatchNorm, the first two also by a ReLU, and the skip is a 1x1 conv + BatchNorm.
    """

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = False):
        super().__init__()
        mid = out_ch // 2
        if batch_norm:
            self.conv_block = nn.Sequential(
                nn.Conv2d(in_ch, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, out_ch, 1), nn.BatchNorm2d(out_ch))
            self.skip_layer = None if in_ch == out_ch else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1),
                                                                         nn.BatchNorm2d(out_ch))
        else:
            self.conv_block = nn.Sequential(nn.Conv2d(in_ch, mid, 1), nn.ReLU(inplace=True),
                                            nn.Conv2d(mid, mid, 3, padding=1), nn.Conv2d(mid, out_ch, 1))
            self.skip_layer = None if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.conv_block(x)
        if self.skip_layer is not None:
            x = self.skip_layer(x)
        return x + residual


class HourGlass(nn.Module):
    """Recursive hourglass of ``depth`` levels (official names ``res<n>_1/_2/_3``, ``res_center``).

    Level ``n``: ``res_n_1(x) + up2(res_n_3(inner(res_n_2(maxpool(x)))))`` with ``inner`` the level below (or
    ``res_center``), and ``up2`` bilinear x2 with ``align_corners=True``.
    """

    def __init__(self, depth: int, channels: int, batch_norm: bool = False):
        super().__init__()
        self.depth = depth
        self._add_level(depth, channels, batch_norm)

    def _add_level(self, n, channels, batch_norm):
        # registration order = official state-dict order: res<n>_1, res<n>_2, the level below, res<n>_3
        setattr(self, f'res{n}_1', ResidualBlock(channels, channels, batch_norm))
        setattr(self, f'pool{n}_1', nn.MaxPool2d(2, 2))
        setattr(self, f'res{n}_2', ResidualBlock(channels, channels, batch_norm))
        if n > 1:
            self._add_level(n - 1, channels, batch_norm)
        else:
            self.res_center = ResidualBlock(channels, channels, batch_norm)
        setattr(self, f'res{n}_3', ResidualBlock(channels, channels, batch_norm))

    def _level(self, x: Tensor, n: int) -> Tensor:
        up = getattr(self, f'res{n}_1')(x)
        low = getattr(self, f'res{n}_2')(getattr(self, f'pool{n}_1')(x))
        low = self._level(low, n - 1) if n > 1 else self.res_center(low)
        low = getattr(self, f'res{n}_3')(low)
        return up + nn.functional.interpolate(low, scale_factor=2, mode='bilinear', align_corners=True)

    def forward(self, x: Tensor) -> Tensor:
        return self._level(x, self.depth)


class Lin(nn.Module):
    """1x1 conv (+ BatchNorm) + ReLU (official ``Lin``; key ``conv_block``)."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = False):
        super().__init__()
        layers = [nn.Conv2d(in_ch, out_ch, 1)] + ([nn.BatchNorm2d(out_ch)] if batch_norm else [])
        self.conv_block = nn.Sequential(*layers, nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_block(x)


class FeedbackHourGlass(nn.Module):
    """DIC's landmark estimator: a one-stack hourglass on ``2 num_feature`` channels with a feedback half.

    ``x`` (``B x 3 x H x W``, the SR image in DIC's mean-subtracted range) -> stride-2 7x7 conv, ReLU, residual
    blocks and a max-pool -> ``B x F x H/4 x W/4``; concatenated with the previous step's hidden half (with itself
    at the first step), 1x1 ``compress_in``, depth-4 hourglass on ``2F`` channels; the first ``F`` channels give the
    heatmaps (``B x K x H/4 x W/4``), the second ``F`` are the hidden state for the next step.
    """

    def __init__(self, num_feature: int = 256, num_keypoints: int = 68):
        super().__init__()
        self.num_feature = num_feature
        self.pre_conv_block = nn.Sequential(
            nn.Conv2d(3, num_feature // 4, 7, 2, 3), nn.ReLU(inplace=True),
            ResidualBlock(num_feature // 4, num_feature // 2), nn.MaxPool2d(2, 2),
            ResidualBlock(num_feature // 2, num_feature // 2), ResidualBlock(num_feature // 2, num_feature))
        self.compress_in = nn.Conv2d(2 * num_feature, 2 * num_feature, 1)
        self.hg = HourGlass(4, 2 * num_feature)
        self.hg_conv_out = nn.Sequential(ResidualBlock(num_feature, num_feature), Lin(num_feature, num_feature),
                                         nn.Conv2d(num_feature, num_keypoints, 1))

    def forward(self, x: Tensor, last_hidden: Tensor = None):
        """``(heatmap, hidden)`` for image ``x`` and the previous step's ``hidden`` (None at the first step)."""
        feature = self.pre_conv_block(x)
        feature = self.compress_in(torch.cat((feature, feature if last_hidden is None else last_hidden), dim=1))
        feature = self.hg(feature)
        return self.hg_conv_out(feature[:, :self.num_feature]), feature[:, self.num_feature:]


class StackedHourGlass(nn.Module):
    """The official landmark network of DIC's evaluation (``eval_landmark.py``, ``HG_68_CelebA.pth``): 4 stacked
    depth-4 hourglasses with BatchNorm, 256 features, 68 heatmaps at a quarter of the image size.

    ``pre_conv_block``: 7x7 stride-2 conv + BatchNorm + ReLU, residual blocks and a max-pool (``B x F x H/4 x W/4``).
    Stack ``i``: ``hg<i>`` (hourglass), ``hg<i>_res1``, ``hg<i>_lin1``, ``hg<i>_conv_pred`` (the heatmaps); between
    stacks the features get ``hg<i>_conv1(features) + hg<i>_conv2(heatmaps)`` added. The last stack's heatmaps are
    returned. Only the evaluation's use is built (``connect_type`` 'mean' with no previous state).
    """

    def __init__(self, num_feature: int = 256, num_stack: int = 4, num_keypoints: int = 68):
        super().__init__()
        self.num_stack = num_stack
        self.pre_conv_block = nn.Sequential(
            nn.Conv2d(3, num_feature // 4, 7, 2, 3), nn.BatchNorm2d(num_feature // 4), nn.ReLU(inplace=True),
            ResidualBlock(num_feature // 4, num_feature // 2, True), nn.MaxPool2d(2, 2),
            ResidualBlock(num_feature // 2, num_feature // 2, True), ResidualBlock(num_feature // 2, num_feature, True))
        for i in range(num_stack):
            setattr(self, f'hg{i}', HourGlass(4, num_feature, True))
            setattr(self, f'hg{i}_res1', ResidualBlock(num_feature, num_feature, True))
            setattr(self, f'hg{i}_lin1', Lin(num_feature, num_feature, True))
            setattr(self, f'hg{i}_conv_pred', nn.Conv2d(num_feature, num_keypoints, 1))
            if i < num_stack - 1:
                setattr(self, f'hg{i}_conv1', nn.Conv2d(num_feature, num_feature, 1))
                setattr(self, f'hg{i}_conv2', nn.Conv2d(num_keypoints, num_feature, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``B x 3 x H x W`` (DIC's mean-subtracted range) -> ``B x K x H/4 x W/4`` heatmaps of the last stack."""
        features = self.pre_conv_block(x)
        for i in range(self.num_stack):
            hidden = getattr(self, f'hg{i}_lin1')(getattr(self, f'hg{i}_res1')(getattr(self, f'hg{i}')(features)))
            heatmaps = getattr(self, f'hg{i}_conv_pred')(hidden)
            if i < self.num_stack - 1:
                features = features + getattr(self, f'hg{i}_conv1')(hidden) + getattr(self, f'hg{i}_conv2')(heatmaps)
        return heatmaps
