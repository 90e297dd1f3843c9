"""CTCNet generator (Gao et al., "CTCNet: A CNN-Transformer Cooperation Network for Face Image Super-Resolution",
TIP 2023).

Re-implemented from the facts of the official code (wsxuzixiang/CTCNet, ``models/ctcnet.py`` class ``CTCNet``;
``docs/fidelity.md`` Part C; the code is CC BY-NC-SA and none of it is copied). With the defaults this is the released
x8 network: 24,404,917 parameters under the official state-dict names, so released weights load strictly. Of these,
1,997,218 are constructed and never called by the official forward (the top-level ``down_input``, ``up_input``,
``embed`` and ``scale1_1`` .. ``scale3_4``, and inside the blocks ``att``, ``STL64``, ``STL128``, ``conv1``,
``conv2``, ``weight1``); they are kept so that the checkpoints load.

Data flow (``C@S`` = C channels at S x S; ``LGB`` = :class:`~.ctcnet_blocks.LocalGlobalBlock`, ``MSB`` =
:class:`~.ctcnet_blocks.MultiScaleBlock`; ``down*``: stride-2 conv + LeakyReLU(0.2) + conv + LeakyReLU, ``up*``: the
same with a 6x6 stride-2 transposed conv)::

    lr (B x 3 x 16 x 16, [0, 1]) --PIL bicubic x8--> 3@128 --> [-1, 1] = u
    x   = LGB32(head(u))                         32@128   (4 transformer blocks, 1 head, hourglass depth 4)
    x1  = LGB64(down1(x))                        64@64    (6 blocks, 2 heads)
    x2  = LGB128(down2(x1))                      128@32   (6 blocks, 4 heads)
    z   = 4 x MSB(down3(x2))                     128@16
    y1  = LGB128(CA(tail352_128(cat[up1(z), x2, conv_64(x1), conv_32(conv_32(x))])))             128@32
    y2  = LGB64(CA(tail288_64(cat[up2(y1), x1, conv_32(x), tranpose_128(x2)])))                  64@64
    y3  = LGB32(CA(tai256_32(cat[up3(y2), x, tranpose64_128(x1), tranpose128_128^2(x2)])))       32@128
    out = tail(y3) + u                           3@128 --> [0, 1] (not clamped)

The skip convs are shared: ``conv_32`` is applied twice in series (128 -> 64 -> 32) and once more at the 64 level,
``tranpose128_128`` twice in series (32 -> 64 -> 128). The official network takes and returns images in [-1, 1];
that convention lives inside :meth:`CTCNet.forward` here (exact affine maps).
"""
from typing import Any

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.ctcnet_blocks import ChannelAttention, LocalGlobalBlock, MultiScaleBlock, Scale
from sfmnet_plugin.archs.pil_resize import check_lr_resize, upsample_lr_face
from sfmnet_plugin.archs.sparnet_blocks import official_init_

SIZE_MULTIPLE = 8  # three stride-2 stages; the skip concatenations need the sizes to halve exactly


def _conv(in_ch: int, out_ch: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)


def _resample(in_ch: int, mid_ch: int, out_ch: int, transposed: bool) -> nn.Sequential:
    """Stride-2 conv (3x3, ``in -> mid``) or transposed conv (6x6), LeakyReLU(0.2), 3x3 conv ``mid -> out``,
    LeakyReLU(0.2); no biases. Halves or doubles the size."""
    first = (nn.ConvTranspose2d(in_ch, mid_ch, 6, stride=2, padding=2, bias=False) if transposed
             else nn.Conv2d(in_ch, mid_ch, 3, stride=2, padding=1, bias=False))
    return nn.Sequential(first, nn.LeakyReLU(0.2), nn.Conv2d(mid_ch, out_ch, 3, padding=1, bias=False),
                         nn.LeakyReLU(0.2))


@ARCH_REGISTRY.register()
class CTCNet(nn.Module):
    """CTCNet generator: a U-shaped CNN-transformer network with multi-scale skips (see the module docstring).

    Args:
        upscale: the LR input (``B x 3 x h x w`` in [0, 1]) is first resized to ``(h * upscale, w * upscale)`` with
            the PIL bicubic of the official loader; 1 means the input is already that upsampled image. The
            weights do not depend on it.
        num_feat: width ``c`` of the first stage (official 32): the stages are ``c``, ``2c``, ``4c``
            wide and the hourglasses ``2c``; the state-dict names stay the official ones (``tail352_128`` is then
            ``11c -> 4c``). Only the default matches the released weights; smaller widths are for quick runs.
        sigmoid_gate: apply the sigmoid that each bottleneck block constructs to its ``compress2`` gate (a fix; the
            official network, and so its weights, never applies it: ``docs/fidelity.md`` §C4).
        lr_resize: ``'pil_uint8'`` (default): the LR upsampled bit for bit as the official loader's PIL resize of the
            8-bit image; ``'pil_float'``: the same bicubic on the float values (no rounding or clipping).
        official_init: re-initialise as the official training did (conv, transposed-conv and linear weights
            N(0, 0.02), their biases 0, BatchNorm weights N(1, 0.02) and biases 0); off means PyTorch's defaults.

    ``forward(x)``: ``B x 3 x h x w`` -> ``B x 3 x (h * upscale) x (w * upscale)``; the upsampled size must be a
    multiple of 8. The official network was only ever run at 128 x 128.
    """

    def __init__(self, upscale: int = 8, num_feat: int = 32, sigmoid_gate: bool = False, official_init: bool = False,
                 lr_resize: str = 'pil_uint8'):
        super().__init__()
        self.lr_resize = check_lr_resize(lr_resize, type(self).__name__)
        if not isinstance(upscale, int) or upscale < 1:
            raise ValueError(f'CTCNet upscale must be a positive integer, got {upscale!r}.')
        if not isinstance(num_feat, int) or num_feat < 1:
            raise ValueError(f'CTCNet num_feat must be a positive integer (official 32), got {num_feat!r}.')
        self.upscale = upscale
        c1, c2, c4 = num_feat, 2 * num_feat, 4 * num_feat
        stage: dict[str, Any] = dict(hourglass_channels=c2)
        # Registered in the official order, so the state dict lists its keys as the official checkpoints do.
        self.head = _conv(3, c1)
        self.res_layers_down1_pre = LocalGlobalBlock(c1, 4, 1, unused_att=False, **stage)
        self.res_layers_down1 = LocalGlobalBlock(c2, 6, 2, **stage)
        self.res_layers_down2 = LocalGlobalBlock(c4, 6, 4, attention_name='att_func2', **stage)
        self.res_layers_up1 = LocalGlobalBlock(c4, 6, 4, attention_name='att_func2', **stage)
        self.res_layers_up2 = LocalGlobalBlock(c2, 6, 2, **stage)
        self.res_layers = nn.Sequential(*[MultiScaleBlock(c4, 2, c2, sigmoid_gate) for _ in range(4)])
        self.res_layers_back = LocalGlobalBlock(c1, 4, 1, attention_name='att_func2', **stage)
        self.tail = _conv(c1, 3)
        self.tail352_128 = _conv(c4 + c4 + c2 + c1, c4)
        self.tail288_64 = _conv(c2 + c2 + c1 + c4, c2)
        self.tai256_32 = _conv(c1 + c1 + c2 + c4, c1)
        self.conv_64 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.conv_32 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.tranpose_128 = nn.ConvTranspose2d(c4, c4, 8, stride=2, padding=3)
        self.tranpose64_128 = nn.ConvTranspose2d(c2, c2, 8, stride=2, padding=3)
        self.tranpose128_128 = nn.ConvTranspose2d(c4, c4, 6, stride=2, padding=2)
        self.down_input = _resample(c1, c2, c1, transposed=False)  # never called (official), kept for the keys
        self.up_input = _resample(c1, c2, c1, transposed=True)     # never called (official), kept for the keys
        self.down1 = _resample(c1, c2, c2, transposed=False)
        self.down2 = _resample(c2, c4, c4, transposed=False)
        self.down3 = _resample(c4, c4, c4, transposed=False)
        self.up1 = _resample(c4, c4, c4, transposed=True)
        self.up2 = _resample(c4, c2, c2, transposed=True)
        self.up3 = _resample(c2, c1, c1, transposed=True)
        for group in (1, 2, 3):  # never called (official), kept for the keys
            for index in (1, 2, 3, 4):
                self.add_module(f'scale{group}_{index}', Scale(0.25))
        self.embed = nn.Conv2d(c1, c1, 3, padding=1)  # never called (official), kept for the keys
        self.channel_func_128 = ChannelAttention(c4)
        self.channel_func_64 = ChannelAttention(c2)
        self.channel_func_32 = ChannelAttention(c1)
        if official_init:
            official_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR in [0, 1] -> ``B x 3 x H x W`` SR in [0, 1] (not clamped)."""
        upsampled = upsample_lr_face(x, self.upscale, SIZE_MULTIPLE, 'its 3 stride-2 stages', 'CTCNet',
                                     self.lr_resize) * 2 - 1
        x = self.res_layers_down1_pre(self.head(upsampled))    # 32 @ H
        x1 = self.res_layers_down1(self.down1(x))              # 64 @ H/2
        x2 = self.res_layers_down2(self.down2(x1))             # 128 @ H/4
        z = self.res_layers(self.down3(x2))                    # 128 @ H/8
        x_half = self.conv_32(x)                               # 32 @ H/2 (the official network computes it twice)

        y1 = torch.cat([self.up1(z), x2, self.conv_64(x1), self.conv_32(x_half)], dim=1)       # 352 @ H/4
        y1 = self.res_layers_up1(self.channel_func_128(self.tail352_128(y1)))
        y2 = torch.cat([self.up2(y1), x1, x_half, self.tranpose_128(x2)], dim=1)               # 288 @ H/2
        y2 = self.res_layers_up2(self.channel_func_64(self.tail288_64(y2)))
        y3 = torch.cat([self.up3(y2), x, self.tranpose64_128(x1),
                        self.tranpose128_128(self.tranpose128_128(x2))], dim=1)                 # 256 @ H
        y3 = self.res_layers_back(self.channel_func_32(self.tai256_32(y3)))
        return (self.tail(y3) + upsampled + 1) / 2             # official global residual in [-1, 1], then [0, 1]


__all__ = ['CTCNet']
