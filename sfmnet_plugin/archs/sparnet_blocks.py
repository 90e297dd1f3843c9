"""Building blocks of the SPARNet family (``docs/fidelity.md`` §B2).

Re-implemented from the written specification of the official code (chaofengc/Face-SPARNet, whose code is
CC BY-NC-SA; none of it is copied here). The attribute names (``conv2d``, ``norm.norm``, ``preact_func``,
``att_func``, ``b1_4``, ...) are the official ones on purpose: the state-dict keys of these modules are then
exactly those of the released checkpoints (listed in ``tests/data/sparnet_official_keys.txt``), so released
weights load into the plugin's networks with BasicSR's own loader, and the converter only has to check them.

* :class:`ConvLayer`: [nearest x2] -> reflect pad -> conv (stride 2 for 'down') -> norm -> activation (2.1).
* :class:`FaceAttentionUnit` (the official ``ResidualBlock``, the paper's FAU): a pre-activation residual
  block whose residual is multiplied by a spatial attention mask from an hourglass (2.2).
* :class:`HourGlassAttention` (the official ``HourGlassBlock``): the recursive hourglass that makes the mask (2.3).

Every block takes ``norm_type`` ('bn' | 'in' | 'none'), ``relu_type`` ('leakyrelu' | 'prelu' | 'relu' | 'selu' |
'none') and ``spectral_norm`` (torch's ``spectral_norm`` on every conv: the official SPARNetHD G and D), so
SPARNet, SPARNetHD and the multi-scale discriminator are all built from these blocks.
"""
import torch.nn.functional as F
from torch import Tensor, nn

NORM_TYPES = ('bn', 'in', 'none')
RELU_TYPES = ('leakyrelu', 'prelu', 'relu', 'selu', 'none')
ATTENTION_TYPES = ('spar', 'spar3d')
HOURGLASS_CHANNELS = 64  # the hourglass works at 64 channels whatever the trunk width (§B2.3)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f'{name} must be one of {choices}, got {value!r}.')


class NormLayer(nn.Module):
    """``B x C x H x W -> B x C x H x W``: BatchNorm, affine InstanceNorm (no running statistics) or identity.

    A wrapper only so that the state-dict names are the official ``<layer>.norm.norm.weight`` (§B2.1).
    """

    def __init__(self, channels: int, norm_type: str = 'bn'):
        super().__init__()
        check_choice('norm_type', norm_type, NORM_TYPES)
        if norm_type == 'bn':
            self.norm = nn.BatchNorm2d(channels)
        elif norm_type == 'in':
            self.norm = nn.InstanceNorm2d(channels, affine=True)
        else:
            self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x)


def make_activation(relu_type: str, channels: int) -> nn.Module:
    """The activation named ``relu_type``. Never in place: the official in-place LeakyReLU overwrote the identity
    shortcut's input when ``norm_type='none'`` (§B9 item 2); without in-place the result is the intended one."""
    check_choice('relu_type', relu_type, RELU_TYPES)
    if relu_type == 'leakyrelu':
        return nn.LeakyReLU(0.2)
    if relu_type == 'prelu':
        return nn.PReLU(channels)
    if relu_type == 'relu':
        return nn.ReLU()
    if relu_type == 'selu':
        return nn.SELU()
    return nn.Identity()


class ConvLayer(nn.Module):
    """``B x in_ch x H x W -> B x out_ch x H' x W'`` with ``H' = 2H`` ('up'), ``ceil(H / 2)`` ('down') or ``H``.

    [nearest x2 if 'up'] -> ReflectionPad(k // 2) (if ``use_pad``) -> conv k x k (stride 2 if 'down') -> norm ->
    activation. The conv has a bias only without a norm (§B2.1).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, scale: str = 'none', norm_type: str = 'none',
                 relu_type: str = 'none', use_pad: bool = True, spectral_norm: bool = False):
        super().__init__()
        check_choice('scale', scale, ('none', 'up', 'down'))
        self.upsample = scale == 'up'
        self.pad = nn.ReflectionPad2d(kernel_size // 2) if use_pad else nn.Identity()
        conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=2 if scale == 'down' else 1, bias=norm_type == 'none')
        # torch's classic spectral_norm keeps the official names: weight_orig (parameter), weight_u, weight_v.
        self.conv2d = nn.utils.spectral_norm(conv) if spectral_norm else conv
        self.norm = NormLayer(out_ch, norm_type)
        self.act = make_activation(relu_type, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
        return self.act(self.norm(self.conv2d(self.pad(x))))


class HourGlassAttention(nn.Module):
    """Attention mask by a recursive hourglass: ``x (B x C x H x W) -> x * M``, ``M`` is ``B x c_mask x H x W``.

    ``c_mask`` is 1 for 'spar' (a spatial mask shared by all channels) and ``C`` for 'spar3d'. All inner layers
    are 3x3 :class:`ConvLayer` at 64 channels with the block's norm and activation (§B2.3). Level ``L``
    (``depth`` down to 1) with input ``u``::

        up1  = b1_L(u)                       # stride 1, H x W
        low1 = b2_L(u)                       # stride 2, ceil(H/2)
        low2 = level L-1 (low1), or b2_plus_1(low1) at L = 1
        up2  = b3_L(low2)                    # nearest x2 + conv, resized to up1's size if they differ
        return up1 + up2

    then ``M = sigmoid(out_block(level depth (x)))`` with a plain conv (bias, no norm) as ``out_block``.
    """

    def __init__(self, depth: int, in_ch: int, mask_ch: int, norm_type: str = 'bn', relu_type: str = 'leakyrelu',
                 spectral_norm: bool = False):
        super().__init__()
        if depth < 1:
            raise ValueError(f'HourGlassAttention depth must be at least 1, got {depth}.')
        self.depth = depth
        mid = HOURGLASS_CHANNELS

        def conv(cin, scale='none'):
            return ConvLayer(cin, mid, 3, scale, norm_type, relu_type, spectral_norm=spectral_norm)

        # Registered in the official order (b1_L, b2_L from the top level down, then b2_plus_1, then b3_1..b3_D),
        # so the state dict lists its keys in the released checkpoints' order.
        for level in range(depth, 0, -1):
            level_in = in_ch if level == depth else mid
            self.add_module(f'b1_{level}', conv(level_in))
            self.add_module(f'b2_{level}', conv(level_in, 'down'))
        self.b2_plus_1 = conv(mid)
        for level in range(1, depth + 1):
            self.add_module(f'b3_{level}', conv(mid, 'up'))
        self.out_block = nn.Sequential(ConvLayer(mid, mask_ch, 3, spectral_norm=spectral_norm), nn.Sigmoid())

    def hourglass(self, level: int, u: Tensor) -> Tensor:
        """``B x c x H x W -> B x 64 x H x W``: one level of the hourglass and, recursively, those below it."""
        up1 = getattr(self, f'b1_{level}')(u)
        low1 = getattr(self, f'b2_{level}')(u)
        low2 = self.hourglass(level - 1, low1) if level > 1 else self.b2_plus_1(low1)
        up2 = getattr(self, f'b3_{level}')(low2)
        if up2.shape[-2:] != up1.shape[-2:]:  # odd sizes: ceil(H/2) * 2 = H + 1
            up2 = F.interpolate(up2, size=up1.shape[-2:], mode='nearest')
        return up1 + up2

    def attention_mask(self, x: Tensor) -> Tensor:
        """``B x C x H x W -> B x c_mask x H x W`` in (0, 1)."""
        return self.out_block(self.hourglass(self.depth, x))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention_mask(x)


class FaceAttentionUnit(nn.Module):
    """Face Attention Unit (official ``ResidualBlock``): ``y = shortcut(x) + r * M(r)`` (§B2.2).

    ``B x in_ch x H x W -> B x out_ch x H' x W'`` (``H' = 2H`` for 'up', ``ceil(H/2)`` for 'down', else ``H``)::

        shortcut_func: identity, or a plain conv (bias, no norm/act) with the block's scale
        preact_func:   norm(in_ch) -> act            (pre-activation)
        conv1:         conv in_ch -> out_ch (+ nearest x2 first for 'up') -> norm -> act
        conv2:         conv out_ch -> out_ch (stride 2 for 'down') -> norm
        att_func:      r -> r * M(r), M from an hourglass of depth ``hg_depth`` (identity if ``hg_depth`` is 0)

    The mask multiplies only the residual branch, not the sum (§B9 item 5).

    ``official_inplace_preactivation``: with ``norm_type='none'`` and an identity shortcut, the official in-place
    activation overwrote the block input before it was added, so the shortcut carried ``act(x)`` (§B9 item 2). True
    reproduces that result (without modifying the caller's tensor); the default adds ``x``. No released network is
    affected (all have a norm).
    """

    def __init__(self, in_ch: int, out_ch: int, scale: str = 'none', hg_depth: int = 2, att_name: str = 'spar',
                 norm_type: str = 'bn', relu_type: str = 'leakyrelu', spectral_norm: bool = False,
                 official_inplace_preactivation: bool = False):
        super().__init__()
        check_choice('att_name', att_name, ATTENTION_TYPES)
        identity_shortcut = scale == 'none' and in_ch == out_ch
        self.shortcut_is_activated_input = official_inplace_preactivation and identity_shortcut and norm_type == 'none'
        self.shortcut_func: nn.Module
        if identity_shortcut:
            self.shortcut_func = nn.Identity()
        else:
            self.shortcut_func = ConvLayer(in_ch, out_ch, 3, scale, spectral_norm=spectral_norm)
        self.preact_func = nn.Sequential(NormLayer(in_ch, norm_type), make_activation(relu_type, in_ch))
        self.conv1 = ConvLayer(in_ch, out_ch, 3, 'up' if scale == 'up' else 'none', norm_type, relu_type,
                               spectral_norm=spectral_norm)
        self.conv2 = ConvLayer(out_ch, out_ch, 3, 'down' if scale == 'down' else 'none', norm_type, 'none',
                               spectral_norm=spectral_norm)
        mask_ch = 1 if att_name == 'spar' else out_ch
        self.att_func = (HourGlassAttention(hg_depth, out_ch, mask_ch, norm_type, relu_type, spectral_norm)
                         if hg_depth > 0 else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        activated = self.preact_func(x)
        residual = self.conv2(self.conv1(activated))
        shortcut = activated if self.shortcut_is_activated_input else self.shortcut_func(x)
        return shortcut + self.att_func(residual)


def official_init_(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """The official initialisation (§B4; CTCNet, WFEN and UFSRNet have the same ``init_weights``, normal 0.02): conv,
    transposed-conv and linear weights N(0, gain) and biases 0; BatchNorm weights N(1, gain) and biases 0. Other
    layers keep their constructed values (InstanceNorm PyTorch's (1, 0); LayerNorms, PReLUs, learnable scalars,
    attention temperatures). Spectral-normed convs get it on ``weight_orig``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = getattr(layer, 'weight_orig', layer.weight)
            nn.init.normal_(weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)
    return module
