"""SPARNet and SPARNetHD generators (Chen et al., "Learning Spatial Attention for Face Super-Resolution", TIP 2021).

Re-implemented from the written specification of the official code (``docs/fidelity.md``
§B1-§B3 and §B7; the official code is CC BY-NC-SA and none of it is copied). With the defaults,
:class:`SPARNet` is the released x8 network (``SPARNet-V16-S4-epoch20.pth``): 10,518,867 parameters and the
official state-dict names, so the released weights load as they are (``sfmnet_plugin.checkpoints`` checks them).

Data flow of the released x8 network (``C(n)`` = channels, ``hg`` = hourglass depth of the FAU's attention)::

    lr (B x 3 x 16 x 16, [0, 1]) --PIL bicubic x8 on 8 bits--> (B x 3 x 128 x 128) --> [-1, 1]
    encoder.0   conv 3 -> 32                                     128 x 128
    encoder.1-3 FAU down 32 -> 64 (hg 4), 64 -> 128 (hg 3), 128 -> 128 (hg 2)   -> 16 x 16
    res_layers  10 x FAU 128 -> 128 (hg 2)                       16 x 16
    decoder.0-2 FAU up 128 -> 128 (hg 3), 128 -> 64 (hg 4), 64 -> 32 (hg 5)     -> 128 x 128
    out_conv    conv 32 -> 3 (no tanh, no global residual)       128 x 128 --> [0, 1] (not clamped)

Every hourglass bottoms out at 4x4 at this size. The official network takes and returns images in [-1, 1]
(Normalize(0.5, 0.5)); here that convention lives inside :meth:`SPARNet.forward` (``2x - 1`` in,
``(y + 1) / 2`` out), so the plugin's SPARNet has the same contract as its SFMNet: LR face in [0, 1], SR out in
[0, 1]. The affine maps are exact, so outputs equal the official ones up to float rounding.
"""
import math
from typing import Any

from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.pil_resize import check_lr_resize, upsample_lr_face
from sfmnet_plugin.archs.sparnet_blocks import (
    ATTENTION_TYPES,
    ConvLayer,
    FaceAttentionUnit,
    HourGlassAttention,
    check_choice,
    official_init_,
)

# The official hourglass depth rule starts from log2(64 / bottleneck_size): the 64 is a hard-coded constant
# (the first FAU's output size at in_size 128), not derived from the input size (§B3.1 and §B9 item 4).
HOURGLASS_DEPTH_REFERENCE = 64


def _log2_int(value: float, name: str) -> int:
    if value <= 0 or math.log2(value) != int(math.log2(value)):
        raise ValueError(f'{name} must be a power of two, got {value}.')
    return int(math.log2(value))


@ARCH_REGISTRY.register()
class SPARNet(nn.Module):
    """SPARNet generator: encoder of down-FAUs, a body of FAUs, decoder of up-FAUs (§B3).

    Args:
        upscale: the LR input (``B x 3 x h x w`` in [0, 1]) is first resized to ``(h * upscale, w * upscale)`` with
            PIL's bicubic (see ``lr_resize``), which is what the official data loader fed the network (§B5.1); 1
            means the input is already that upsampled image. The weights do not depend on it.
        min_ch, max_ch: channel range; every width is clipped to ``[min_ch, max_ch]`` (32, 128).
        in_size, out_size, min_feat_size: define the structure as in the official code (128, 128, 16):
            ``log2(in_size / min_feat_size)`` down-FAUs and ``log2(out_size / min_feat_size)`` up-FAUs. The network
            is fully convolutional; the sizes are not enforced at run time (with ``out_size != in_size`` the output
            is ``out_size / in_size`` times the upsampled input).
        res_depth: body FAUs = ``res_depth + 3 - down_steps`` (10 with the defaults).
        relu_type: 'leakyrelu' (0.2, default), 'prelu', 'relu', 'selu' or 'none'.
        norm_type: 'bn' (default), 'in' (SPARNetHD) or 'none'.
        att_name: 'spar' (1-channel spatial mask, released SPARNet) or 'spar3d' (one mask per channel).
        bottleneck_size: size of the hourglass bottleneck at a 128 input (4); sets the hourglass depths.
        spectral_norm: spectral normalisation on every conv (SPARNetHD).
        official_init: re-initialise as the official training did (conv N(0, 0.02), BatchNorm weight N(1, 0.02),
            biases 0); off means PyTorch's default initialisation.
        official_inplace_preactivation: reproduce the official in-place activation bug of ``norm_type='none'``
            (see :class:`~sfmnet_plugin.archs.sparnet_blocks.FaceAttentionUnit`); no effect with a norm.
        lr_resize: ``'pil_uint8'`` (default, official): the LR upsampled bit for bit as the official loader's PIL
            resize of the 8-bit image (no gradient into the LR); ``'pil_float'``: PIL's bicubic on the float
            values, differentiable in the LR (see :mod:`sfmnet_plugin.archs.pil_resize`).

    ``forward(x)``: ``B x 3 x h x w`` -> ``B x 3 x (h * upscale) x (w * upscale)``; the upsampled size must be a
    multiple of ``2 ** down_steps`` (the official network returns a larger image otherwise, §B3.3).

    Variants: ``SPARNet()`` = released SPARNet (10,518,867 params); ``SPARNet(res_depth=1, att_name='spar3d')`` =
    SPARNet-Light-Attn3D (5,242,211); :class:`SPARNetHD` = the 512x512 GAN generator.
    """

    def __init__(self, upscale: int = 8, min_ch: int = 32, max_ch: int = 128, in_size: int = 128,
                 out_size: int = 128, min_feat_size: int = 16, res_depth: int = 10, relu_type: str = 'leakyrelu',
                 norm_type: str = 'bn', att_name: str = 'spar', bottleneck_size: int = 4,
                 spectral_norm: bool = False, official_init: bool = False,
                 official_inplace_preactivation: bool = False, lr_resize: str = 'pil_uint8'):
        super().__init__()
        self.lr_resize = check_lr_resize(lr_resize, type(self).__name__)
        if not isinstance(upscale, int) or upscale < 1:
            raise ValueError(f'SPARNet upscale must be a positive integer, got {upscale!r}.')
        check_choice('att_name', att_name, ATTENTION_TYPES)
        self.upscale = upscale
        down_steps = _log2_int(in_size / min_feat_size, 'in_size / min_feat_size')
        up_steps = _log2_int(out_size / min_feat_size, 'out_size / min_feat_size')
        self.size_multiple = 2 ** down_steps

        def clip(channels):
            return max(min_ch, min(channels, max_ch))

        hg_depth = _log2_int(HOURGLASS_DEPTH_REFERENCE / bottleneck_size, '64 / bottleneck_size')
        if hg_depth < down_steps - 1:  # it drops by one per encoder FAU; 0 means no attention, below 0 is invalid
            raise ValueError(f'SPARNet bottleneck_size={bottleneck_size} gives hourglass depth {hg_depth}, too shallow '
                             f'for {down_steps} down-sampling FAUs; use a smaller bottleneck_size.')
        num_body = res_depth + 3 - down_steps
        if num_body < 0:
            raise ValueError(f'SPARNet res_depth={res_depth} gives {num_body} body FAUs; it must be at least '
                             f'{down_steps - 3}.')
        base_ch = clip(max_ch // (down_steps + 1))  # 32 for SPARNet, 102 for SPARNetHD
        blocks: dict[str, Any] = dict(att_name=att_name, norm_type=norm_type, relu_type=relu_type,
                                      spectral_norm=spectral_norm,
                                      official_inplace_preactivation=official_inplace_preactivation)

        # B x 3 x H x W -> B x base_ch x H x W -> (down_steps FAUs, each halving) -> B x clip(base_ch 2^k) x H/2^k ...
        encoder: list[nn.Module] = [ConvLayer(3, base_ch, 3, spectral_norm=spectral_norm)]
        for i in range(down_steps):
            encoder.append(FaceAttentionUnit(clip(base_ch * 2 ** i), clip(base_ch * 2 ** (i + 1)), 'down', hg_depth,
                                             **blocks))
            hg_depth -= 1
        self.encoder = nn.Sequential(*encoder)

        # body at min_feat_size: the hourglass depth goes back up by one (2 for SPARNet, bottleneck 4x4)
        hg_depth += 1
        body_ch = clip(base_ch * 2 ** down_steps)
        self.res_layers = nn.Sequential(*[FaceAttentionUnit(body_ch, body_ch, 'none', hg_depth, **blocks)
                                          for _ in range(num_body)])

        # up_steps FAUs, each doubling the size; the hourglass deepens by one before each
        decoder: list[nn.Module] = []
        for i in range(up_steps):
            hg_depth += 1
            decoder.append(FaceAttentionUnit(clip(base_ch * 2 ** (up_steps - i)),
                                             clip(base_ch * 2 ** (up_steps - i - 1)), 'up', hg_depth, **blocks))
        self.decoder = nn.Sequential(*decoder)
        self.out_conv = ConvLayer(base_ch, 3, 3, spectral_norm=spectral_norm)

        if official_init:
            official_init_(self)

    def upsample_input(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR -> ``B x 3 x (h*upscale) x (w*upscale)`` PIL-bicubic image, after a size check."""
        stages = int(math.log2(self.size_multiple))
        return upsample_lr_face(x, self.upscale, self.size_multiple, f'its {stages} stride-2 stages',
                                type(self).__name__, self.lr_resize)

    def forward(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR in [0, 1] -> ``B x 3 x H x W`` SR in [0, 1] (not clamped)."""
        x = self.upsample_input(x) * 2 - 1  # official [-1, 1] input convention
        features = self.encoder(x)          # B x C_body x H/2^d x W/2^d
        features = self.res_layers(features)
        features = self.decoder(features)   # B x base_ch x H x W
        return (self.out_conv(features) + 1) / 2

    def forward_with_attention(self, x: Tensor):
        """``(sr, masks)``: the SR image and the attention mask of every FAU in execution order (encoder, body,
        decoder), each ``B x c_mask x h x w`` in (0, 1) at its FAU's resolution: the maps the paper visualises."""
        masks = []
        hooks = [module.out_block.register_forward_hook(lambda module, inputs, mask: masks.append(mask))
                 for module in self.modules() if isinstance(module, HourGlassAttention)]
        try:
            sr = self(x)
        finally:
            for hook in hooks:
                hook.remove()
        return sr, masks


@ARCH_REGISTRY.register()
class SPARNetHD(SPARNet):
    """SPARNetHD generator (§B7): :class:`SPARNet` at 512x512 with InstanceNorm and spectral norm on every conv.

    Structure with the defaults (85,793,412 parameters with 'spar', 90,093,793 with 'spar3d'): conv 3 -> 102, FAU-down
    102 -> 204 -> 408 -> 512 -> 512 (hourglass depth 4, 3, 2, 1) to 32x32, 9 body FAUs at 512 channels (depth 1),
    FAU-up 512 -> 512 -> 408 -> 204 -> 102 (depth 2, 3, 4, 5), conv 102 -> 3. Every hourglass bottoms out at 16x16.

    ``upscale`` defaults to 1: SPARNetHD restores a degraded face already resized to the output size (§B7,
    data). Any size that is a multiple of 16 runs. The released ``net_H`` weights are the EMA generator.
    """

    def __init__(self, upscale: int = 1, min_ch: int = 32, max_ch: int = 512, in_size: int = 512,
                 out_size: int = 512, min_feat_size: int = 32, res_depth: int = 10, relu_type: str = 'leakyrelu',
                 norm_type: str = 'in', att_name: str = 'spar', bottleneck_size: int = 4,
                 spectral_norm: bool = True, official_init: bool = False,
                 official_inplace_preactivation: bool = False, lr_resize: str = 'pil_uint8'):
        super().__init__(upscale=upscale, min_ch=min_ch, max_ch=max_ch, in_size=in_size, out_size=out_size,
                         min_feat_size=min_feat_size, res_depth=res_depth, relu_type=relu_type, norm_type=norm_type,
                         att_name=att_name, bottleneck_size=bottleneck_size, spectral_norm=spectral_norm,
                         official_init=official_init, official_inplace_preactivation=official_inplace_preactivation,
                         lr_resize=lr_resize)


__all__ = ['SPARNet', 'SPARNetHD']
