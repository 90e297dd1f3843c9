"""CTCNet: the official network parameter for parameter (``tests/data/ctcnet_official_keys.txt``), its output on the
golden face (``tests/data/golden/ctcnet.npz``, made by the official code) and each quirk of the official forward
(docs/fidelity.md §C4).

Full-size structure checks run on the meta device (no memory, no arithmetic); the block quirks run on narrow blocks
at 8 x 8; the 24-million-parameter network runs twice: once in float64 for the golden, once in float32.
"""
import os

import numpy as np
import pytest
import torch

from sfmnet_plugin.archs.ctcnet_arch import CTCNet
from sfmnet_plugin.archs.ctcnet_blocks import HourglassAttention, MultiScaleBlock, UnusedSwinWeights
from sfmnet_plugin.archs.pil_resize import resize_as_8bit, upsample_lr_face
from sfmnet_plugin.archs.sparnet_blocks import official_init_

KEYS = os.path.join('tests', 'data', 'ctcnet_official_keys.txt')
GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data', 'golden', 'ctcnet.npz')
PARAMETERS = 24_404_917
# Never called by the official forward: down_input 36,864 + up_input 92,160 + embed 9,248 + 12 scales (138,284); in
# each of the 4 bottleneck blocks STL64 33,344 + STL128 132,224 + att 2,184 + conv1 147,840 + conv2 147,712 + 4 weight1
# scalars (463,308); att in the other stages but the first (580 + 2,184 + 2,184 + 580 + 162) and their 12 weight1.
UNUSED_PARAMETERS = 1_997_218


def on_meta(make):
    with torch.device('meta'):
        return make()


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def official_layout(official_key_listing):
    return official_key_listing(KEYS)


@pytest.fixture(scope='module')
def golden_network(official_layout, seeded_golden_network):
    """The default CTCNet in float64 with the golden's seeded weights (drawn in the official key order)."""
    return seeded_golden_network(CTCNet(upscale=1), official_layout, GOLDEN)


def official(x01):
    """[0, 1] -> the official [-1, 1] convention of the golden file."""
    return x01 * 2 - 1


def test_parameter_count_and_the_official_layout_load_strictly(official_layout):
    network = on_meta(CTCNet)
    assert count(network) == PARAMETERS
    assert {key: (tuple(t.shape), t.dtype) for key, t in network.state_dict().items()} == official_layout
    assert list(network.state_dict()) == list(official_layout)  # the official order too
    state_dict = {key: torch.full(shape, 0.5, dtype=dtype) for key, (shape, dtype) in official_layout.items()}
    result = CTCNet().load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_stage_parameter_counts():
    network = on_meta(CTCNet)
    stages = ('head', 'res_layers_down1_pre', 'res_layers_down1', 'res_layers_down2', 'res_layers', 'res_layers_up1',
              'res_layers_up2', 'res_layers_back', 'tranpose_128')
    assert [count(getattr(network, name)) for name in stages] == [
        896, 567_239, 1_047_143, 2_759_863, 11_197_516, 2_759_863, 1_047_143, 567_401, 1_048_704]
    assert [len(getattr(network, name).encoder_level1) for name in stages[1:4]] == [4, 6, 6]
    assert [getattr(network, name).encoder_level1[0].attn.num_heads for name in stages[1:4]] == [1, 2, 4]


def test_golden_output_from_the_128x128_upsampled_face(golden_network, golden_hr_input):
    with torch.no_grad():
        sr = golden_network(golden_hr_input)
    assert sr.dtype == torch.float64
    np.testing.assert_allclose(official(sr).numpy(), np.load(GOLDEN)['sr'], rtol=0, atol=1e-4)


def test_golden_output_from_the_16x16_lr(golden_network, golden_lr_face, golden_hr_input):
    lr = torch.from_numpy(np.array(golden_lr_face)).permute(2, 0, 1)[None].double() / 255
    assert torch.equal(upsample_lr_face(lr, 8, 8, '', 'CTCNet'), golden_hr_input)  # the loader's image, exactly
    golden_network.upscale = 8
    try:
        with torch.no_grad():
            sr = golden_network(lr)
    finally:
        golden_network.upscale = 1
    np.testing.assert_allclose(official(sr).numpy(), np.load(GOLDEN)['sr'], rtol=0, atol=1e-3)


def calls(network, x):
    """How often each named module runs in one forward."""
    counts = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: counts.__setitem__(name, counts.get(name, 0) + 1))
             for name, module in network.named_modules() if name]
    try:
        network(x)
    finally:
        for hook in hooks:
            hook.remove()
    return counts


def test_the_never_called_modules_are_exactly_the_official_ones():
    network = on_meta(CTCNet)
    with torch.device('meta'):
        counts = calls(network, torch.empty(1, 3, 16, 16))
    unused = {name for name, _ in network.named_parameters() if counts.get(name.rpartition('.')[0], 0) == 0}
    assert sum(p.numel() for name, p in network.named_parameters() if name in unused) == UNUSED_PARAMETERS
    top = {name.split('.')[0] for name in unused}
    assert {'down_input', 'up_input', 'embed', 'scale1_1', 'scale3_4'} <= top
    assert not top & {'head', 'tail', 'down1', 'up3', 'conv_32', 'tranpose128_128', 'channel_func_32'}
    for block in ('res_layers.0', 'res_layers.3'):
        assert all(counts.get(f'{block}.{name}', 0) == 0 for name in ('STL64', 'STL128', 'att', 'conv1', 'conv2'))
        assert counts[f'{block}.encoder.weight2'] == 1 and counts.get(f'{block}.encoder.weight1', 0) == 0
    assert 'res_layers_down1_pre.att' not in dict(network.named_modules())  # the first stage has no unused att


def test_skip_convs_are_shared_and_applied_in_series():
    with torch.device('meta'):
        network = CTCNet()
        shapes = []
        hooks = [getattr(network, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.append((name, tuple(i[0].shape[1:]), tuple(o.shape[1:]))))
            for name in ('conv_32', 'tranpose128_128')]
        network(torch.empty(1, 3, 16, 16))
    for hook in hooks:
        hook.remove()
    # conv_32: 128 -> 64 (the 64-level skip, which the official network computes a second time) -> 32; one
    # tranpose128_128 twice in series: 32 -> 64 -> 128
    assert shapes == [('conv_32', (32, 128, 128), (32, 64, 64)), ('conv_32', (32, 64, 64), (32, 32, 32)),
                      ('tranpose128_128', (128, 32, 32), (128, 64, 64)),
                      ('tranpose128_128', (128, 64, 64), (128, 128, 128))]


def test_global_residual_adds_the_upsampled_input_and_the_range_lives_inside():
    torch.manual_seed(0)
    network = CTCNet().eval()
    lr = torch.rand(1, 3, 16, 16)
    hook = network.tail.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    try:
        with torch.no_grad():  # a zero tail: the official output is its input, so ours is the upsampled LR
            sr = network(lr)
    finally:
        hook.remove()
    torch.testing.assert_close(sr, resize_as_8bit(lr, 128), atol=1e-6, rtol=0)
    with torch.no_grad():
        sr = network(lr)
    assert sr.shape == (1, 3, 128, 128) and sr.dtype == torch.float32 and torch.isfinite(sr).all()


def bottleneck_by_hand(block, x, gate):
    """The official bottleneck data flow (docs/fidelity.md §C4), composed here from the block's own submodules."""
    def up(t):
        return torch.nn.functional.interpolate(t, size=x.shape[-2:], mode='bilinear', align_corners=True)
    x1 = block.alise(block.att_func2(block.encoder(x)))
    low = torch.nn.functional.avg_pool2d(x1, 2)
    high = x1 - up(low)
    low = block.decoder_low(low)
    fused = block.compress1(torch.cat([block.scale_1(up(low)), block.scale_2(block.decoder_high(high))], 1))
    y1 = block.scale_1(block.decoder_high(fused))
    y2 = block.scale_2(up(block.decoder_low(low)))
    return block.alise(block.alise2(torch.cat([y2, y1], 1)) + x1 * gate(block.compress2(x1))) + x


@pytest.fixture(scope='module')
def bottleneck():
    torch.manual_seed(0)
    block = MultiScaleBlock(channels=16).double().eval()
    with torch.no_grad():
        block.scale_1.scale.fill_(0.3)  # distinct scales, so swapping their roles would show
        block.compress2.bias.fill_(2.0)  # gate values far outside (0, 1)
    return block


def test_bottleneck_reuses_its_modules_and_gates_without_a_sigmoid(bottleneck):
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(bottleneck(x), bottleneck_by_hand(bottleneck, x, lambda g: g), rtol=0, atol=1e-12)
        counts = calls(bottleneck, x)
    assert [counts.get(name, 0) for name in ('decoder_low', 'decoder_high', 'alise', 'scale_1', 'scale_2',
                                             'encoder', 'compress2')] == [2, 2, 2, 2, 2, 1, 1]
    assert all(counts.get(name, 0) == 0 for name in ('STL64', 'STL128', 'att', 'conv1', 'conv2'))


def test_sigmoid_gate_is_an_option_that_changes_the_result(bottleneck):
    fixed = MultiScaleBlock(channels=16, sigmoid_gate=True).double().eval()
    fixed.load_state_dict(bottleneck.state_dict(), strict=True)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fixed(x), bottleneck_by_hand(fixed, x, torch.sigmoid), rtol=0, atol=1e-12)
        assert (fixed(x) - bottleneck(x)).abs().max() > 1e-2
    network = on_meta(lambda: CTCNet(sigmoid_gate=True))
    assert all(block.sigmoid_gate for block in network.res_layers) and count(network) == PARAMETERS


@pytest.mark.parametrize('channels, projected', [(64, False), (32, True), (128, True)])
def test_hourglass_mask_multiplies_the_input_and_its_skip_is_x_or_a_projection(channels, projected):
    torch.manual_seed(0)
    attention = HourglassAttention(2, channels).double().eval()
    assert hasattr(attention, '_64') is projected
    x = torch.randn(2, channels, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        mask = attention.attention_mask(x)
        skip = attention._64(x) if projected else x
        expected = attention.out_block(attention.channel_func(attention.hourglass(2, x)) + skip)
        assert mask.shape == (2, 1, 8, 8) and ((mask > 0) & (mask < 1)).all()
        torch.testing.assert_close(mask, expected, rtol=0, atol=0)
        torch.testing.assert_close(attention(x), x * mask, rtol=0, atol=0)


def test_unused_swin_weights_hold_only_parameters():
    holder = UnusedSwinWeights(64)
    assert [name for name, _ in holder.named_parameters()] == [
        'norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias', 'mlp.fc1.weight', 'mlp.fc1.bias',
        'mlp.fc2.weight', 'mlp.fc2.bias']
    assert count(holder) == 33_344


def test_upscale_contract_and_size_check():
    network = on_meta(CTCNet)
    with torch.device('meta'):
        assert network(torch.empty(2, 3, 16, 16)).shape == (2, 3, 128, 128)
        assert CTCNet(upscale=1)(torch.empty(1, 3, 128, 128)).shape == (1, 3, 128, 128)
        with pytest.raises(ValueError, match='CTCNet got a 132x128 input at x1, .* divisible by 8'):
            CTCNet(upscale=1)(torch.empty(1, 3, 132, 128))
    with pytest.raises(ValueError, match='CTCNet upscale must be a positive integer'):
        CTCNet(upscale=0)


@torch.no_grad()
def test_official_initialisation_statistics():
    torch.manual_seed(0)
    network = official_init_(on_meta(CTCNet).to_empty(device='cpu'))
    layers = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    weights = torch.cat([m.weight.flatten() for m in network.modules() if isinstance(m, layers)])
    assert abs(weights.mean()) < 1e-3 and weights.std() == pytest.approx(0.02, rel=0.01)
    assert all(not m.bias.any() for m in network.modules() if isinstance(m, layers) and m.bias is not None)
    transposed = torch.cat([m.weight.flatten() for m in network.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert transposed.std() == pytest.approx(0.02, rel=0.01)  # the official init_weights matches 'Conv' in the name
    bn = torch.cat([m.weight for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert bn.mean() == pytest.approx(1, abs=3e-3) and bn.std() == pytest.approx(0.02, rel=0.1)
    fresh = CTCNet(official_init=True)  # the constructor option; scalars and temperatures keep their values
    assert all(float(m.scale) == 1.0 for name, m in fresh.res_layers_down1.named_modules() if name.endswith('weight2'))
    assert torch.equal(fresh.res_layers_down2.encoder_level1[0].attn.temperature, torch.ones(4, 1, 1))
    assert float(fresh.res_layers[0].scale_1.scale) == 0.5


def test_num_feat_scales_every_width_and_keeps_the_official_names():
    narrow, official = on_meta(lambda: CTCNet(num_feat=8)), on_meta(CTCNet)
    assert list(narrow.state_dict()) == list(official.state_dict())
    assert count(narrow) == 1_573_618
    assert narrow.tail352_128.weight.shape == (32, 88, 3, 3)  # 11c -> 4c, officially 352 -> 128
    assert narrow.res_layers[0].att_func2.b1_2.conv2d.weight.shape == (16, 32, 3, 3)  # hourglasses at 2c
    assert narrow.res_layers_down1_pre.encoder.atten.conv_du[0].out_channels == 1  # c // 16, at least 1
    with torch.device('meta'):
        assert narrow(torch.empty(1, 3, 16, 16)).shape == (1, 3, 128, 128)
    with pytest.raises(ValueError, match='CTCNet num_feat must be a positive integer'):
        CTCNet(num_feat=0)


def test_the_benchmark_counts_the_transposed_convs():
    from sfmnet_plugin.utils.profiling import count_macs_per_image

    # input elements x out_channels x kernel area: 2 x 4 x 4 x 3 x 36
    assert count_macs_per_image(torch.nn.ConvTranspose2d(2, 3, 6, 2, 2), torch.rand(1, 2, 4, 4)) == 3456
    with torch.device('meta'):
        assert count_macs_per_image(CTCNet(), torch.empty(1, 3, 16, 16)) == 29_367_314_560
