"""WFEN: the official parameter count and state-dict layout, the official output on the golden face (seeded weights),
and every quirk of the official forward (docs/fidelity.md Part W), each on its own.

The full-size network runs once per module in float64 (the golden); the quirk tests use single blocks or a narrow
WFEN on 32 x 32 images.
"""
import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from PIL import Image

from sfmnet_plugin.archs.pil_resize import upsample_lr_face
from sfmnet_plugin.archs.wfen_arch import WFEN
from sfmnet_plugin.archs.wfen_blocks import (
    FrequencyDualTransformer,
    GlobalChannelAttention,
    HaarWavelet,
    WaveletUpsample,
    WindowChannelAttention,
    haar_filters,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFICIAL_KEYS = os.path.join('tests', 'data', 'wfen_official_keys.txt')
GOLDEN = os.path.join(REPO_ROOT, 'tests', 'data', 'golden', 'wfen.npz')
TINY = dict(upscale=1, min_ch=4, res_depth=3)  # 4-8-16 channels; Transformer.0 shifted, Transformer.1 not


def haar_keys(state_dict):
    return [key for key in state_dict if key.endswith('haar_weights')]


@pytest.fixture(scope='module')
def golden():
    with np.load(GOLDEN) as data:
        return torch.from_numpy(data['output'].astype(np.float64)), int(data['seed'])


@pytest.fixture(scope='module')
def seeded_wfen(seeded_state_dict, golden):
    """The released WFEN in float64 with the golden's seeded weights (the Haar filters as constructed)."""
    model = WFEN(upscale=1)
    state_dict = model.state_dict()
    model.double().load_state_dict(seeded_state_dict(state_dict, seed=golden[1], keep=haar_keys(state_dict)))
    return model.eval()


def official_input(lr_uint8):
    """The official loader's input in [0, 1]: PIL bicubic to 128 x 128 on the uint8 LR (before ``Normalize``)."""
    up = Image.fromarray(lr_uint8).resize((128, 128), Image.BICUBIC)
    return torch.from_numpy(np.asarray(up, dtype=np.float64) / 255).permute(2, 0, 1)[None]


def test_parameter_count_and_frozen_haar_filters_match_the_official_network():
    with torch.device('meta'):
        model = WFEN()
    parameters = list(model.parameters())
    assert sum(p.numel() for p in parameters) == 6_795_879
    assert sum(p.numel() for p in parameters if not p.requires_grad) == 15_360
    assert [name for name, p in model.named_parameters() if not p.requires_grad] == haar_keys(model.state_dict())
    assert not list(model.buffers())  # every official tensor is a parameter


def test_state_dict_is_the_official_listing_and_loads_strictly(official_key_listing):
    layout = official_key_listing(OFFICIAL_KEYS)
    model = WFEN()
    state_dict = model.state_dict()
    assert list(state_dict) == list(layout)  # same names in the same order (the seeded weights depend on it)
    assert {key: (tuple(t.shape), t.dtype) for key, t in state_dict.items()} == layout
    generator = torch.Generator().manual_seed(0)
    official = {key: torch.randn(shape, generator=generator, dtype=dtype) for key, (shape, dtype) in layout.items()}
    model.load_state_dict(official, strict=True)
    assert torch.equal(model.HaarFeatureFusion2.channel_tranformation[2].weight,
                       official['HaarFeatureFusion2.channel_tranformation.2.weight'])
    assert build_network({'type': 'WFEN'}).upscale == 8


def test_golden_output_from_the_upsampled_face(seeded_wfen, golden, golden_lr_face):
    with torch.no_grad():
        output = seeded_wfen(official_input(golden_lr_face)) * 2 - 1  # official [-1, 1] range
    assert output.shape == golden[0].shape == (1, 3, 128, 128)
    assert (output - golden[0]).abs().max() < 1e-4


def _upsampling_is_pil_exact_on_uint8(lr_uint8):
    lr = torch.from_numpy(lr_uint8.astype(np.float64) / 255).permute(2, 0, 1)[None]
    return torch.equal(torch.round(upsample_lr_face(lr, 8, 32, '', 'WFEN') * 255), official_input(lr_uint8) * 255)


def test_golden_output_from_the_16x16_face(seeded_wfen, golden, golden_lr_face):
    # This seeded network magnifies a one-grey-level difference of its input to whole units of output: the x8 path
    # matches because upsample_lr_face reproduces PIL's resize on uint8 exactly.
    assert _upsampling_is_pil_exact_on_uint8(golden_lr_face)
    lr = torch.from_numpy(golden_lr_face.astype(np.float64) / 255).permute(2, 0, 1)[None]
    seeded_wfen.upscale = 8
    try:
        with torch.no_grad():
            output = seeded_wfen(lr) * 2 - 1
    finally:
        seeded_wfen.upscale = 1
    assert (output - golden[0]).abs().max() < 1e-3


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_contract_lr_in_sr_out_any_float_dtype(dtype):
    torch.manual_seed(0)
    model = WFEN(upscale=8, min_ch=4, res_depth=2).to(dtype)
    output = model(torch.rand(2, 3, 4, 4, dtype=dtype))
    assert output.shape == (2, 3, 32, 32) and output.dtype == dtype
    output.mean().backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)  # the Haar filters stay fixed


def test_sizes_must_be_multiples_of_32():
    model = WFEN(**TINY)
    with pytest.raises(ValueError, match=r'WFEN got a 48x48 input .* divisible by 32'):
        model(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match='divisible by 32'):
        WFEN(upscale=8, min_ch=4)(torch.rand(1, 3, 10, 10))
    with pytest.raises(ValueError, match='min_ch must be a positive multiple of 4'):
        WFEN(min_ch=6)
    with pytest.raises(ValueError, match='res_depth must be at least 1'):
        WFEN(res_depth=0)


def test_official_init_sets_convs_and_keeps_the_haar_filters():
    torch.manual_seed(0)
    model = WFEN(min_ch=8, official_init=True)
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 1e-3
    assert all(m.bias is None or not m.bias.any() for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert torch.equal(model.HaarDownsample1.HaarWavelet.haar_weights, haar_filters(16))


# ---- quirks of the official forward, one test each ----------------------------------------------------------------

def test_quirk_window_1_shift_rolls_by_minus_one_and_back_by_zero():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    official = WindowChannelAttention(8, 1, shifts=True).double()
    fixed = WindowChannelAttention(8, 1, shifts=True, symmetric_shift=True).double()
    fixed.load_state_dict(official.state_dict())
    assert (official.shift_in, official.shift_back, fixed.shift_back) == (1, 0, 1)
    # the official output is the symmetric one shifted by one pixel up and left, circularly
    assert torch.allclose(official(x), torch.roll(fixed(x), shifts=(-1, -1), dims=(2, 3)), atol=1e-12)
    for window in (2, 4):  # even windows roll back by what they rolled: the option changes nothing
        even = WindowChannelAttention(8, window, shifts=True).double()
        even_fixed = WindowChannelAttention(8, window, shifts=True, symmetric_shift=True).double()
        even_fixed.load_state_dict(even.state_dict())
        assert even.shift_in == even.shift_back == window // 2
        assert torch.equal(even(x[..., :4, :4]), even_fixed(x[..., :4, :4]))


def test_quirk_shifted_blocks_of_the_network_and_the_symmetric_option():
    model = WFEN()
    shifts = [block.modules_att['att_0'].shift_in for block in model.Transformer]
    assert shifts == [1, 0, 1, 0, 1] and model.Transformer0.modules_att['att_0'].shift_in == 0
    assert [block.modules_att['att_0'].shift_back for block in model.Transformer] == [0] * 5
    shifted = {name: (m.window_size, m.shift_in) for name, m in model.named_modules()
               if isinstance(m, WindowChannelAttention) and m.shift_in}
    assert shifted == {'TransformerDown2.0.modules_att.att_0': (4, 2), 'Transformer.0.modules_att.att_0': (1, 1),
                       'Transformer.2.modules_att.att_0': (1, 1), 'Transformer.4.modules_att.att_0': (1, 1),
                       'TransformerUp1.0.modules_att.att_0': (8, 4), 'TransformerUp3.0.modules_att.att_0': (2, 1)}
    torch.manual_seed(0)
    tiny = WFEN(**TINY).double()
    tiny_fixed = WFEN(**TINY, symmetric_shift=True).double()
    tiny_fixed.load_state_dict(tiny.state_dict(), strict=True)  # same weights, same names
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    assert not torch.allclose(tiny(x), tiny_fixed(x))


def test_quirk_global_attention_reorders_heads_channel_major_before_the_projection():
    torch.manual_seed(0)
    heads, channels = 4, 12
    attention = GlobalChannelAttention(channels, heads).double()
    x = torch.randn(1, channels, 5, 7, dtype=torch.float64)
    b, c, h, w = x.shape
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in attention._qkv(x))
    attn = torch.relu(torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(k, dim=-1)
                      .transpose(-2, -1) * attention.temperature)
    head_major = (attn @ v).reshape(b, c, h, w)  # channel i of head g at g * c/heads + i
    order = torch.arange(c).reshape(heads, c // heads).t().reshape(-1)  # position j holds head-major channel order[j]
    projection = attention.project_out.weight[:, :, 0, 0]
    expected = torch.einsum('oc,bchw->bohw', projection[:, torch.argsort(order)], head_major)
    assert torch.allclose(attention(x), expected, atol=1e-12)
    assert not torch.allclose(attention(x), torch.einsum('oc,bchw->bohw', projection, head_major))


@pytest.mark.parametrize('make', [lambda: GlobalChannelAttention(8, 2), lambda: WindowChannelAttention(8, 2, False)])
def test_quirk_attention_is_relu_of_scaled_cosines_not_softmax(make):
    torch.manual_seed(0)
    attention = make().double()
    with torch.no_grad():  # non-negative q, k, v: every cosine is >= 0
        attention.qkv.weight.uniform_(0, 1)
        attention.qkv_dwconv.weight.uniform_(0, 1)
    x = torch.rand(1, 8, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        once = attention(x)
        attention.temperature.fill_(2.0)
        assert torch.allclose(attention(x), 2 * once, atol=1e-12)  # linear in the temperature: no normalisation
        attention.temperature.fill_(-1.0)
        assert torch.equal(attention(x), torch.zeros_like(x))  # ReLU of negative scores: no attention at all


def test_quirk_haar_filters_forward_divides_by_4_and_inverse_does_not():
    haar = HaarWavelet(3).double()
    assert haar.haar_weights.shape == (12, 1, 2, 2) and not haar.haar_weights.requires_grad
    assert torch.equal(haar.haar_weights[4:8], haar.haar_weights[:4])  # the same four filters for every channel
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    bands = haar(x)
    assert bands.shape == (2, 12, 3, 4)
    assert torch.allclose(bands[:, :3], torch.nn.functional.avg_pool2d(x, 2))  # sub-band-major: a is the 2x2 mean
    top_left, top_right = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    bottom_left, bottom_right = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    assert torch.allclose(bands[:, 3:6], (top_left - top_right + bottom_left - bottom_right) / 4)
    assert torch.allclose(bands[:, 6:9], (top_left + top_right - bottom_left - bottom_right) / 4)
    assert torch.allclose(bands[:, 9:], (top_left - top_right - bottom_left + bottom_right) / 4)
    assert torch.allclose(haar(bands, rev=True), x, atol=1e-12)  # /4 forward, x1 inverse: exact reconstruction
    unit = torch.zeros(1, 12, 1, 1, dtype=torch.float64)
    unit[0, 0] = 1.0
    assert torch.equal(haar(unit, rev=True)[0, 0], torch.ones(2, 2, dtype=torch.float64))  # not divided


def test_quirk_wavelet_upsample_puts_the_detail_branch_in_the_approximation_slot():
    torch.manual_seed(0)
    fusion = WaveletUpsample(4, 6).double()
    with torch.no_grad():  # silence the fused branch: only RB(h + v + d) reaches the inverse transform
        fusion.channel_tranformation[2].weight.zero_()
        fusion.channel_tranformation[2].bias.zero_()
    x_big, x_small = torch.randn(1, 4, 8, 8, dtype=torch.float64), torch.randn(1, 6, 4, 4, dtype=torch.float64)
    _, h, v, d = fusion.HaarWavelet(x_big).chunk(4, dim=1)
    details = fusion.RB(h + v + d)
    # the approximation filter is all ones: every 2x2 block is the detail value, undivided
    expected = torch.nn.functional.interpolate(details, scale_factor=2, mode='nearest')
    assert torch.allclose(fusion(x_big, x_small), expected, atol=1e-12)


def test_quirk_transformer_feed_forward_skip_carries_the_attention_output_not_the_sum():
    torch.manual_seed(0)
    block = FrequencyDualTransformer(8, 2, False, 2).double()
    with torch.no_grad():
        block.modules_ffd['ffd0'].project_out.weight.zero_()
        block.modulec_ffd['ffd0'].project_out.weight.zero_()
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    first = block.modules_att['att_0'](block.modules_norm['norm_0'](x))
    expected = block.modulec_att['att_0'](block.modulec_norm['norm_0'](first))
    assert torch.allclose(block(x), expected, atol=1e-12)  # the block input x is gone
    fixed = FrequencyDualTransformer(8, 2, False, 2, full_residual=True).double()
    fixed.load_state_dict(block.state_dict(), strict=True)
    first = block.modules_att['att_0'](block.modules_norm['norm_0'](x)) + x
    expected = block.modulec_att['att_0'](block.modulec_norm['norm_0'](first)) + first
    assert torch.allclose(fixed(x), expected, atol=1e-12)  # the option keeps it: x + attention, twice
    tiny, tiny_fixed = WFEN(**TINY).double(), WFEN(**TINY, full_residual=True).double()
    tiny_fixed.load_state_dict(tiny.state_dict(), strict=True)
    image = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    assert not torch.allclose(tiny(image), tiny_fixed(image))
