"""UFSRNet: "U-shaped Face Super-resolution Reconstruction Network Based on Wavelet Transform".

Re-implemented from the official code (``Aichiniuroumian/UFSRNet``: ``models/ufsrnet.py``, ``models/common.py``;
``docs/fidelity.md`` Part U has the facts; the repository states no licence and none of its code is copied). With the
defaults :class:`UFSRNet` is the official network: 4,156,518 parameters under the official state-dict names, so the
official ``latest_net_G.pth`` loads as it is.

Data flow at x8 (``C(n)`` = channels; ``DWT`` = Haar analysis, 4x the channels at half the size; ``IWT`` its inverse)::

    lr (B x 3 x 16 x 16, [0, 1]) --PIL bicubic x8--> x (B x 3 x 128 x 128) --> [-1, 1]
    head       conv 3x3 3 -> 32                                               c1   32 x 128 x 128
    level 0    DWT -> 1x1 128 -> 64, LReLU -> depthwise pair, gated           b2   64 x 64 x 64
    level 1    DWT -> 1x1 256 -> 128, LReLU -> depthwise pair, gated          b4  128 x 32 x 32
    level 2    DWT -> 1x1 512 -> 128, LReLU -> depthwise, i_l2_Block2, gated  b6  128 x 16 x 16
    bottleneck i_l2_Block1, i_l2_Block2 again (the same weights)             b8  128 x 16 x 16
    up 2       1x1 128 -> 512, LReLU, IWT, + b4 -> i_l1_Block2, i_l1_Block1       128 x 32 x 32
    up 1       1x1 128 -> 256, IWT, + b2 -> i_l0_Block2, i_l0_Block1               64 x 64 x 64
    up 0       1x1 64 -> 128, LReLU, IWT, + c1                                     32 x 128 x 128
    tail       conv 3x3 32 -> 3, LReLU 0.2, tanh, + x  --> [0, 1] (not clamped)

A gated pair at level ``k`` is ``b = dw2(LReLU(dw1(d))) * sigmoid(conv1x1(d) -> 1 channel) + d`` with 3x3 depthwise
convs ``d_lk_Block1``/``d_lk_Block2`` and the gate ``zishiying{k+1}``. The blocks ``i_l*`` are :class:`DistillNAFBlock`.

Quirks of the official forward, all kept (``docs/fidelity.md`` §U9): level 2 calls the bottleneck block ``i_l2_Block2``
where levels 0 and 1 call their second depthwise conv, and without the activation before it, so ``i_l2_Block2`` runs
twice with shared weights and ``d_l2_Block2`` is never called (``shared_bottleneck_block=False`` builds the symmetric
reading instead); every block's ``conv0`` and ``gamma`` are never called either; the ``1x1 128 -> 256`` of ``up 1``
has no activation where the other two do; the output is ``tanh(LReLU(conv)) + x``.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from sfmnet_plugin.archs.pil_resize import check_lr_resize, upsample_lr_face
from sfmnet_plugin.archs.sparnet_blocks import official_init_
from sfmnet_plugin.archs.ufsrnet_blocks import DistillNAFBlock, haar_dwt, haar_iwt

NUM_FEAT = 32  # the official network hard-codes 32 channels, in UFSRNet and in its blocks
NUM_LEVELS = 3  # three Haar levels: the HR size must be a multiple of 2^3


def _depthwise(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=1, groups=channels)


def _gate(channels: int) -> nn.Sequential:
    """``zishiying`` (Chinese for "adaptive"): a one-channel sigmoid map from a 1x1 conv."""
    return nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())


@ARCH_REGISTRY.register()
class UFSRNet(nn.Module):
    """UFSRNet generator: a three-level Haar-wavelet U-Net with distillation/NAF blocks (see the module docstring).

    Args:
        upscale: the LR input (``B x 3 x h x w`` in [0, 1]) is first resized to ``(h * upscale, w * upscale)`` with a
            PIL-exact bicubic, which is what the official data loader fed the network (the loader is SPARNet's);
            1 means the input is already that upsampled image. The weights do not depend on it.
        shared_bottleneck_block: True (official, the released weights were trained with it): level 2 calls
            ``i_l2_Block2`` as its second block, which the bottleneck calls again. False: level 2 is built like
            levels 0 and 1 (LReLU, then its own depthwise conv ``d_l2_Block2``); the state-dict names are the same.
        lr_resize: ``'pil_uint8'`` (default): the LR upsampled bit for bit as the official loader's PIL resize of the
            8-bit image; ``'pil_float'``: the same bicubic on the float values (no rounding or clipping).
        official_init: re-initialise as the official training did (every conv weight N(0, 0.02), bias 0; the
            LayerNorms keep (1, 0) and ``beta``/``gamma`` their zeros); off means PyTorch's default initialisation.
        num_feat: the head's width ``C`` (32, which the official code hard-codes); the levels have ``2C``, ``4C`` and
            ``4C`` channels. Other values are ours (the demo's small CPU network).

    ``forward(x)``: ``B x 3 x h x w`` -> ``B x 3 x (h * upscale) x (w * upscale)``; the upsampled size must be a
    multiple of 8 (three Haar levels).
    """

    def __init__(self, upscale: int = 8, shared_bottleneck_block: bool = True, official_init: bool = False,
                 num_feat: int = NUM_FEAT, lr_resize: str = 'pil_uint8'):
        super().__init__()
        self.lr_resize = check_lr_resize(lr_resize, type(self).__name__)
        if not isinstance(upscale, int) or upscale < 1:
            raise ValueError(f'UFSRNet upscale must be a positive integer, got {upscale!r}.')
        if not isinstance(num_feat, int) or num_feat < 1:
            raise ValueError(f'UFSRNet num_feat must be a positive integer (official: 32), got {num_feat!r}.')
        self.upscale = upscale
        self.shared_bottleneck_block = shared_bottleneck_block
        c = num_feat
        self.head = nn.Conv2d(3, c, 3, padding=1)

        # encoder: after each DWT a 1x1 conv narrows the four sub-bands
        self.d_l0 = nn.Conv2d(4 * c, 2 * c, 1)
        self.d_l0_Block1, self.d_l0_Block2 = _depthwise(2 * c), _depthwise(2 * c)
        self.zishiying1 = _gate(2 * c)
        self.d_l1 = nn.Conv2d(8 * c, 4 * c, 1)
        self.d_l1_Block1, self.d_l1_Block2 = _depthwise(4 * c), _depthwise(4 * c)
        self.zishiying2 = _gate(4 * c)
        self.d_l2 = nn.Conv2d(16 * c, 4 * c, 1)
        self.d_l2_Block1, self.d_l2_Block2 = _depthwise(4 * c), _depthwise(4 * c)
        self.zishiying3 = _gate(4 * c)

        # decoder: the official registration order (Block2 before Block1) is the state-dict order
        self.i_l2_Block2, self.i_l2_Block1 = DistillNAFBlock(4 * c), DistillNAFBlock(4 * c)
        self.i_l2 = nn.Conv2d(4 * c, 16 * c, 1)
        self.i_l1_Block2, self.i_l1_Block1 = DistillNAFBlock(4 * c), DistillNAFBlock(4 * c)
        self.i_l1 = nn.Conv2d(4 * c, 8 * c, 1)
        self.i_l0_Block2, self.i_l0_Block1 = DistillNAFBlock(2 * c), DistillNAFBlock(2 * c)
        self.i_l0 = nn.Conv2d(2 * c, 4 * c, 1)

        self.act = nn.LeakyReLU(0.2)
        self.tail1 = nn.Conv2d(c, 3, 3, padding=1)
        if official_init:
            official_init_(self)

    def upsample_input(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR -> ``B x 3 x (h*upscale) x (w*upscale)`` PIL-bicubic image, after a size check."""
        return upsample_lr_face(x, self.upscale, 2 ** NUM_LEVELS, f'its {NUM_LEVELS} Haar levels',
                                type(self).__name__, self.lr_resize)

    def _gated(self, d: Tensor, first: nn.Module, second: nn.Module, gate: nn.Module, act_first: bool = True):
        """``second(act(first(d))) * gate(d) + d``: the encoder's gated pair."""
        hidden = first(d)
        return second(self.act(hidden) if act_first else hidden) * gate(d) + d

    def forward(self, x: Tensor) -> Tensor:
        """``B x 3 x h x w`` LR in [0, 1] -> ``B x 3 x H x W`` SR in [0, 1] (not clamped)."""
        x = self.upsample_input(x) * 2 - 1                                 # official [-1, 1] input, B x 3 x H x W
        c1 = self.head(x)                                                  # 32 x H
        d1 = self.act(self.d_l0(haar_dwt(c1)))                             # 64 x H/2
        b2 = self._gated(d1, self.d_l0_Block1, self.d_l0_Block2, self.zishiying1)
        d2 = self.act(self.d_l1(haar_dwt(b2)))                             # 128 x H/4
        b4 = self._gated(d2, self.d_l1_Block1, self.d_l1_Block2, self.zishiying2)
        d3 = self.act(self.d_l2(haar_dwt(b4)))                             # 128 x H/8
        if self.shared_bottleneck_block:  # official: no activation, and the bottleneck's block in place of Block2
            b6 = self._gated(d3, self.d_l2_Block1, self.i_l2_Block2, self.zishiying3, act_first=False)
        else:
            b6 = self._gated(d3, self.d_l2_Block1, self.d_l2_Block2, self.zishiying3)
        b8 = self.i_l2_Block2(self.i_l2_Block1(b6))                        # 128 x H/8
        i1 = haar_iwt(self.act(self.i_l2(b8))) + b4                        # 512 x H/8 -> 128 x H/4
        i2 = haar_iwt(self.i_l1(self.i_l1_Block1(self.i_l1_Block2(i1)))) + b2  # 256 x H/4 -> 64 x H/2 (no act)
        i3 = haar_iwt(self.act(self.i_l0(self.i_l0_Block1(self.i_l0_Block2(i2))))) + c1  # 128 x H/2 -> 32 x H
        out = self.act(self.tail1(i3)).tanh() + x                          # the official output, [-1, 1] units
        return (out + 1) / 2


__all__ = ['UFSRNet']
