"""WFEN generator (Li et al., "Efficient Face Super-Resolution via Wavelet-based Feature Enhancement Network",
ACM MM 2024).

Re-implemented from the written specification of the official code (PRIS-CV/WFEN, ``models/arch/wfen.py``;
``docs/fidelity.md`` Part W; the official repository states no licence and none of its code is copied). With the
defaults, :class:`WFEN` is the released x8 network (``wfen_best.pth``): 6,795,879 parameters, 15,360 of them the
frozen Haar filters, and the official state-dict names, so the released weights load as they are.

Data flow of the released network (``c`` = ``min_ch`` = 40; ``FDT(w, s)`` = transformer block with window ``w``,
``s`` = shifted windows)::

    lr (B x 3 x 16 x 16, [0, 1]) --PIL bicubic x8--> (B x 3 x 128 x 128) --> [-1, 1]
    first_conv        conv3x3 3 -> c                                   = x0     128
    TransformerDown1  2 x FDT(8)                                       = x1     128, c
    HaarDownsample1   1x1 c -> 2c, Haar: a1, d1 (detail sum)                    64, 2c
    TransformerDown2  FDT(4, s)(a1) + RB1(d1)                          = x2     64, 2c
    HaarDownsample2   1x1 2c -> 4c, Haar: a2, d2                                32, 4c
    TransformerDown3  FDT(2)(a2) + RB2(d2)                             = x3     32, 4c
    HaarDownsample3   1x1 4c -> 4c, Haar: a3, d3                                16, 4c
    Transformer0, Transformer   FDT(1), then res_depth - 1 FDT(1), shifted at even indices; + RB3(d3)   16, 4c
    HaarFeatureFusion1 (x3, .) -> TransformerUp1 FDT(8, s)                      32, 4c
    HaarFeatureFusion2 (x2, .) -> TransformerUp2 FDT(4)                         64, 2c
    HaarFeatureFusion3 (x1, .) -> TransformerUp3 FDT(2, s), FDT(2)              128, c
    out_conv          conv3x3 c -> 3 on (. + x0)                       128 --> [0, 1] (not clamped)

The official network takes and returns images in [-1, 1] (``Normalize(0.5, 0.5)`` in its loaders); here that
convention lives inside :meth:`WFEN.forward` (``2x - 1`` in, ``(y + 1) / 2`` out), so WFEN has the family's
contract. The window sizes make the image side a multiple of 32 (the 8x8 windows at 1/4 resolution).
"""
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.pil_resize import check_lr_resize, upsample_lr_face
from sfmnet_plugin.archs.sparnet_blocks import official_init_
from sfmnet_plugin.archs.wfen_blocks import FrequencyDualTransformer as FDT
from sfmnet_plugin.archs.wfen_blocks import WaveletDownsample, WaveletUpsample, pointwise_block

# (level, window) of every official FDT: level k runs at 1/2^k of the image side. With the Haar steps between
# levels they set the size multiple: max over levels of window * 2^level (and 2^3 for the three Haar steps).
WINDOWS = ((0, 8), (1, 4), (2, 2), (3, 1), (2, 8), (1, 4), (0, 2))


@ARCH_REGISTRY.register()
class WFEN(nn.Module):
    """WFEN generator: a wavelet U-Net of window- and channel-attention transformer blocks.

    Args:
        upscale: the LR input (``B x 3 x h x w`` in [0, 1]) is first resized to ``(h * upscale, w * upscale)`` with a
            PIL-exact bicubic, which is what the official loaders fed the network (its ``LR_x8_up`` images); 1 means
            the input is already that upsampled image. The weights do not depend on it.
        in_channels: image channels (official ``inchannel``, 3).
        min_ch: width at full resolution (40); the levels below have ``2 min_ch`` and ``4 min_ch``.
        res_depth: transformer blocks at 1/8 resolution (6): ``Transformer0`` and ``res_depth - 1`` in
            ``Transformer`` (those at even indices with shifted windows).
        symmetric_shift: the shifted 1x1-window blocks (``Transformer.0, .2, .4``) roll their input by -1 pixel and,
            in the official code, back by 0, so their attention output is shifted by one pixel (circularly) on both
            axes. False (default) keeps that: the released weights were trained with it. True rolls back by +1.
            Blocks with even windows are the same either way.
        full_residual: in every transformer block the official skip around the feed-forward carries only the
            attention output, so the block input reaches the output only through a LayerNorm. False (default) keeps
            that; True adds the block input back too (the usual pre-norm residual). Same weights either way.
        lr_resize: ``'pil_uint8'`` (default): the LR upsampled bit for bit as the official loader's PIL resize of the
            8-bit image; ``'pil_float'``: the same bicubic on the float values (no rounding or clipping).
        official_init: re-initialise as the official training did (every conv weight N(0, 0.02), biases 0);
            off means PyTorch's default initialisation. The Haar filters are never re-initialised.

    ``forward(x)``: ``B x 3 x h x w`` -> ``B x 3 x (h * upscale) x (w * upscale)``; the upsampled size must be a
    multiple of 32.
    """

    def __init__(self, upscale: int = 8, in_channels: int = 3, min_ch: int = 40, res_depth: int = 6,
                 symmetric_shift: bool = False, full_residual: bool = False, official_init: bool = False,
                 lr_resize: str = 'pil_uint8'):
        super().__init__()
        self.lr_resize = check_lr_resize(lr_resize, type(self).__name__)
        if not isinstance(upscale, int) or upscale < 1:
            raise ValueError(f'WFEN upscale must be a positive integer, got {upscale!r}.')
        if res_depth < 1:
            raise ValueError(f'WFEN res_depth must be at least 1 (Transformer0), got {res_depth}.')
        if min_ch < 4 or min_ch % 4:
            raise ValueError(f'WFEN min_ch must be a positive multiple of 4 (the full-width blocks have 4 attention '
                             f'heads), got {min_ch}.')
        self.upscale = upscale
        self.size_multiple = max(8, *(window * 2 ** level for level, window in WINDOWS))
        c1, c2, c4 = min_ch, min_ch * 2, min_ch * 4

        def fdt(channels, window, shifts, heads):
            return FDT(channels, window, shifts, heads, symmetric_shift=symmetric_shift, full_residual=full_residual)

        self.first_conv = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.HaarDownsample1 = WaveletDownsample(c1, c2)
        self.HaarDownsample2 = WaveletDownsample(c2, c4)
        self.HaarDownsample3 = WaveletDownsample(c4, c4)
        self.TransformerDown1 = nn.Sequential(fdt(c1, 8, False, 4), fdt(c1, 8, False, 4))
        self.TransformerDown2 = nn.Sequential(fdt(c2, 4, True, 4))
        self.TransformerDown3 = nn.Sequential(fdt(c4, 2, False, 8))
        self.RB1 = pointwise_block(c2)
        self.RB2 = pointwise_block(c4)
        self.RB3 = pointwise_block(c4)
        self.Transformer0 = fdt(c4, 1, False, 8)
        self.Transformer = nn.Sequential(*[fdt(c4, 1, i % 2 == 0, 8) for i in range(res_depth - 1)])
        self.TransformerUp1 = nn.Sequential(fdt(c4, 8, True, 8))
        self.TransformerUp2 = nn.Sequential(fdt(c2, 4, False, 4))
        self.TransformerUp3 = nn.Sequential(fdt(c1, 2, True, 4), fdt(c1, 2, False, 4))
        self.HaarFeatureFusion1 = WaveletUpsample(c4, c4)
        self.HaarFeatureFusion2 = WaveletUpsample(c2, c4)
        self.HaarFeatureFusion3 = WaveletUpsample(c1, c2)
        self.out_conv = nn.Conv2d(c1, in_channels, 3, padding=1)

        if official_init:
            official_init_(self)

    def upsample_input(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR -> ``B x 3 x (h*upscale) x (w*upscale)`` PIL-bicubic image, after a size check."""
        return upsample_lr_face(x, self.upscale, self.size_multiple,
                                f'its windows ({self.size_multiple} = 8x8 windows at 1/4 size)', type(self).__name__,
                                self.lr_resize)

    def forward(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR in [0, 1] -> ``B x 3 x H x W`` SR in [0, 1] (not clamped)."""
        x0 = self.first_conv(self.upsample_input(x) * 2 - 1)  # official [-1, 1] input convention
        x1 = self.TransformerDown1(x0)
        a1, d1 = self.HaarDownsample1(x1)
        x2 = self.TransformerDown2(a1) + self.RB1(d1)
        a2, d2 = self.HaarDownsample2(x2)
        x3 = self.TransformerDown3(a2) + self.RB2(d2)
        a3, d3 = self.HaarDownsample3(x3)
        body = self.Transformer(self.Transformer0(a3)) + self.RB3(d3)
        up1 = self.TransformerUp1(self.HaarFeatureFusion1(x3, body))
        up2 = self.TransformerUp2(self.HaarFeatureFusion2(x2, up1))
        up3 = self.TransformerUp3(self.HaarFeatureFusion3(x1, up2))
        return (self.out_conv(up3 + x0) + 1) / 2


__all__ = ['WFEN', 'WINDOWS']
