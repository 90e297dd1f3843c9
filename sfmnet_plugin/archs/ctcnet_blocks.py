"""Building blocks of CTCNet (Gao et al., "CTCNet: A CNN-Transformer Cooperation Network for Face Image
Super-Resolution", TIP 2023), ``docs/fidelity.md`` Part C.

Re-implemented from the facts of the official code (wsxuzixiang/CTCNet, ``models/ctcnet.py``; CC BY-NC-SA, none of
it copied). Attribute names are the official ones on purpose (``encoder``, ``alise``, ``att_func2``, ``b1_4``,
``encoder_level1``, ``conv_du``, ``_64``, ...), so the state-dict keys are those the official training saved
(``tests/data/ctcnet_official_keys.txt``) and released weights load without renaming. The class names are the
plugin's own.

Modules the official network constructs but never calls are constructed here too, without a forward of their own,
so that released checkpoints load strictly (:class:`UnusedSwinWeights`, and the ``att``, ``conv1``, ``conv2``,
``weight1`` members named in each block's docstring).
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfmnet_plugin.archs.restormer_blocks import ChannelLayerNorm, GatedFeedForward
from sfmnet_plugin.archs.sparnet_blocks import HourGlassAttention, NormLayer

HOURGLASS_CHANNELS = 64  # the official hourglasses work at 64 channels (twice the first stage's 32), in every block


class Scale(nn.Module):
    """``x -> s * x`` with one learnable scalar ``s`` (state-dict name ``scale``, shape ``(1,)``)."""

    def __init__(self, init_value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init_value)]))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class PReLULayer(nn.Module):
    """A per-channel PReLU, or the identity: a wrapper only for the official names ``relu.func.weight``."""

    def __init__(self, channels: int, active: bool):
        super().__init__()
        self.func = nn.PReLU(channels) if active else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.func(x)


class ConvLayer(nn.Module):
    """The hourglass conv: ``B x in_ch x H x W -> B x out_ch x H' x W'`` (``2H`` for 'up', ``ceil(H/2)`` for 'down').

    [nearest x2 if 'up'] -> reflection pad 1 -> 3x3 conv (stride 2 if 'down'; a bias only without BatchNorm) ->
    BatchNorm (if ``norm``) -> PReLU (if ``prelu``).
    """

    def __init__(self, in_ch: int, out_ch: int, scale: str = 'none', norm: bool = True, prelu: bool = True):
        super().__init__()
        if scale not in ('none', 'up', 'down'):
            raise ValueError(f"ConvLayer scale must be 'none', 'up' or 'down', got {scale!r}.")
        self.upsample = scale == 'up'
        self.pad = nn.ReflectionPad2d(1)
        self.conv2d = nn.Conv2d(in_ch, out_ch, 3, stride=2 if scale == 'down' else 1, bias=not norm)
        self.relu = PReLULayer(out_ch, prelu)  # registered before the norm, as officially (the key order)
        self.norm = NormLayer(out_ch, 'bn' if norm else 'none')

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
        return self.relu(self.norm(self.conv2d(self.pad(x))))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(W2 relu(W1 mean_HW(x)))`` (``conv_du.0``, ``conv_du.2``) through
    ``channels // 16`` hidden channels, at least 1 (every official width is 32 or more; narrower is ours)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class ConvReLU(nn.Module):
    """``relu(conv(x))``, a conv without bias (state-dict name ``conv.weight``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))


class ScaledResidualConv(nn.Module):
    """``w1 x + w2 conv1(prelu(conv(x)))``: 3x3 convs ``C -> C/2 -> C`` with biases, learnable scalars ``w1, w2``."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = channels // 2
        self.conv = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, channels, 3, padding=1)
        self.relu = nn.PReLU(hidden)
        self.weight1 = Scale(1.0)
        self.weight2 = Scale(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.weight1(x) + self.weight2(self.conv1(self.relu(self.conv(x))))


class FeatureExtractionModule(nn.Module):
    """The paper's feature extraction module (official ``one_module``), ``B x C x H x W -> B x C x H x W``::

        x1 = layer1(x); x2 = layer2(x1)                      # two ScaledResidualConv in series
        x4 = layer4(atten(alise(cat[w2 x2, w3 x1])))         # 1x1 ConvReLU 2C -> C, channel attention, 3x3 ConvReLU
        return w4 x + w5 x4

    ``weight1`` is constructed by the official code and never used (kept for the checkpoint's keys).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.layer1 = ScaledResidualConv(channels)
        self.layer2 = ScaledResidualConv(channels)
        self.layer4 = ConvReLU(channels, channels, 3)
        self.alise = ConvReLU(2 * channels, channels, 1)
        self.atten = ChannelAttention(channels)
        for index in range(1, 6):
            self.add_module(f'weight{index}', Scale(1.0))

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        fused = self.layer4(self.atten(self.alise(torch.cat([self.weight2(x2), self.weight3(x1)], dim=1))))
        return self.weight4(x) + self.weight5(fused)


class HourglassAttention(nn.Module):
    """Spatial attention from an hourglass: ``x (B x C x H x W) -> x * M``, ``M`` is ``B x 1 x H x W`` in (0, 1).

    The hourglass is SPARNet's (levels ``depth`` .. 1 of :class:`ConvLayer` at ``mid_ch`` channels, officially 64,
    with BatchNorm + PReLU)::

        level L (u):  up1 = b1_L(u); low1 = b2_L(u) (stride 2)
                      low2 = level L-1 (low1), or b2_plus_1(low1) at L = 1
                      return up1 + b3_L(low2)     (b3: nearest x2 + conv; resized to up1's size if they differ)

    then ``h = channel_func(hourglass(x)) + s``, ``M = sigmoid(out_block(h))``, where ``s`` is ``x`` itself for an
    input of ``mid_ch`` channels (official ``HourGlassBlock``, 64) and the 1x1 conv ``_64(x)`` to ``mid_ch`` otherwise
    (official ``HourGlassBlock2`` for 128 channels, ``HourGlassBlock32`` for 32). The mask multiplies the input.
    """

    def __init__(self, depth: int, in_ch: int, mid_ch: int = HOURGLASS_CHANNELS):
        super().__init__()
        if depth < 1:
            raise ValueError(f'HourglassAttention depth must be at least 1, got {depth}.')
        self.depth = depth
        mid = mid_ch
        # Registered in the official order: b1_L, b2_L from the top level down, b2_plus_1, b3_1 .. b3_depth.
        for level in range(depth, 0, -1):
            level_in = in_ch if level == depth else mid
            self.add_module(f'b1_{level}', ConvLayer(level_in, mid))
            self.add_module(f'b2_{level}', ConvLayer(level_in, mid, 'down'))
        self.b2_plus_1 = ConvLayer(mid, mid)
        for level in range(1, depth + 1):
            self.add_module(f'b3_{level}', ConvLayer(mid, mid, 'up'))
        self.out_block = nn.Sequential(ConvLayer(mid, 1, norm=False, prelu=False), nn.Sigmoid())
        self.channel_func = ChannelAttention(mid)
        if in_ch != mid:
            self._64 = nn.Conv2d(in_ch, mid, 1)

    hourglass = HourGlassAttention.hourglass  # the same b1/b2/b3 recursion, SPARNet's module names

    def attention_mask(self, x: Tensor) -> Tensor:
        """``B x C x H x W -> B x 1 x H x W`` in (0, 1)."""
        skip = self._64(x) if hasattr(self, '_64') else x
        return self.out_block(self.channel_func(self.hourglass(self.depth, x)) + skip)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention_mask(x)


class TransposedAttention(nn.Module):
    """Multi-head attention across channels (Restormer's MDTA): the attention map is ``(C/heads) x (C/heads)``.

    ``q, k, v`` from a 1x1 then a depthwise 3x3 conv (no biases); per head, ``q`` and ``k`` are L2-normalised along
    the pixels, ``A = softmax(q k^T * temperature)``, ``out = project_out(A v)``. ``temperature``: ``heads x 1 x 1``.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        heads = [t.reshape(batch, self.num_heads, channels // self.num_heads, height * width)
                 for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)]
        q, k, v = F.normalize(heads[0], dim=-1), F.normalize(heads[1], dim=-1), heads[2]
        attention = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attention @ v).reshape(batch, channels, height, width))


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))``, then ``+ ffn(norm2(.))``: the paper's efficient transformer block."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = TransposedAttention(dim, num_heads)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GatedFeedForward(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class UnusedSwinWeights(nn.Module):
    """The parameters of the official ``SwinTransformerBlock(dim)`` (``norm1``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``):
    every multi-scale block constructs two and never calls them. Kept, without a forward, so checkpoints load."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)


class LocalGlobalBlock(nn.Module):
    """An encoder/decoder stage block (official ``ResidualBlock1_en_pre``, ``1_en``, ``2_en``, ``1_de``, ``2_de``,
    ``_res_back``), ``B x C x H x W -> B x C x H x W``::

        y = x + encoder_level1(alise(att_func(encoder(x))))

    ``encoder``, ``alise``: :class:`FeatureExtractionModule`; ``att_func`` (named ``att_func2`` in some official
    blocks: ``attention_name``): :class:`HourglassAttention`; ``encoder_level1``: ``num_transformers``
    :class:`TransformerBlock`. ``att`` (a :class:`ChannelAttention`, all blocks but the first) is never called.
    """

    def __init__(self, channels: int, num_transformers: int, num_heads: int, hourglass_depth: int = 4,
                 hourglass_channels: int = HOURGLASS_CHANNELS, attention_name: str = 'att_func',
                 unused_att: bool = True):
        super().__init__()
        self.encoder = FeatureExtractionModule(channels)
        self.alise = FeatureExtractionModule(channels)
        if unused_att:
            self.att = ChannelAttention(channels)
        self.attention_name = attention_name
        self.add_module(attention_name, HourglassAttention(hourglass_depth, channels, hourglass_channels))
        self.encoder_level1 = nn.Sequential(*[TransformerBlock(channels, num_heads) for _ in range(num_transformers)])

    def forward(self, x: Tensor) -> Tensor:
        features = getattr(self, self.attention_name)(self.encoder(x))
        return x + self.encoder_level1(self.alise(features))


def _bilinear(x: Tensor, size) -> Tensor:
    return F.interpolate(x, size=size, mode='bilinear', align_corners=True)


class MultiScaleBlock(nn.Module):
    """A bottleneck block (official ``ResidualBlock_res``), ``B x C x H x W -> B x C x H x W`` at 16 x 16::

        x    = alise(att_func2(encoder(x_in)))
        low  = avgpool2(x); high = x - up(low)                   # up: bilinear, align_corners=True
        low  = decoder_low(low)
        f    = compress1(cat[scale_1 up(low), scale_2 decoder_high(high)])          # 1x1 conv 2C -> C
        y1   = scale_1 decoder_high(f);  y2 = scale_2 up(decoder_low(low))
        out  = alise(alise2(cat[y2, y1]) + x * compress2(x)) + x_in

    Official quirks kept (``docs/fidelity.md`` §C4): ``decoder_low``, ``decoder_high``, ``alise`` and the two scales
    are each used twice with the same weights (``decoder_low`` twice in series on the low band, ``scale_1`` first on
    the low band then on the high one); the gate ``x * compress2(x)`` is a plain 1x1 conv, the block's ``sigmoid``
    is never applied (``sigmoid_gate=True`` applies it: the fix, not the released network).
    Constructed, never called: ``STL64``, ``STL128`` (:class:`UnusedSwinWeights`), ``att``, ``conv1``, ``conv2``.
    """

    def __init__(self, channels: int = 128, hourglass_depth: int = 2, hourglass_channels: int = HOURGLASS_CHANNELS,
                 sigmoid_gate: bool = False):
        super().__init__()
        self.sigmoid_gate = sigmoid_gate
        self.encoder = FeatureExtractionModule(channels)
        self.STL64 = UnusedSwinWeights(channels // 2)  # officially 64 and 128 wide
        self.STL128 = UnusedSwinWeights(channels)
        self.decoder_low = FeatureExtractionModule(channels)
        self.decoder_high = FeatureExtractionModule(channels)
        self.alise = FeatureExtractionModule(channels)
        self.alise2 = ConvReLU(2 * channels, channels, 1)
        self.att = ChannelAttention(channels)
        self.conv1 = ConvLayer(channels, channels)
        self.conv2 = ConvLayer(channels, channels, prelu=False)
        self.att_func2 = HourglassAttention(hourglass_depth, channels, hourglass_channels)
        self.scale_1 = Scale(0.5)
        self.scale_2 = Scale(0.5)
        self.compress1 = nn.Conv2d(2 * channels, channels, 1)
        self.compress2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x_in: Tensor) -> Tensor:
        x = self.alise(self.att_func2(self.encoder(x_in)))
        size = x.shape[-2:]
        low = F.avg_pool2d(x, 2)
        high = x - _bilinear(low, size)
        low = self.decoder_low(low)
        fused = self.compress1(torch.cat([self.scale_1(_bilinear(low, size)),
                                          self.scale_2(self.decoder_high(high))], dim=1))
        y1 = self.scale_1(self.decoder_high(fused))
        y2 = self.scale_2(_bilinear(self.decoder_low(low), size))
        gate = self.compress2(x)
        if self.sigmoid_gate:
            gate = torch.sigmoid(gate)
        return self.alise(self.alise2(torch.cat([y2, y1], dim=1)) + x * gate) + x_in
