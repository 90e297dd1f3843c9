"""UFSRNet: the official network parameter for parameter (``tests/data/ufsrnet_official_keys.txt``), its output on the
golden face (``tests/data/golden/ufsrnet.npz``, made by the official code) and each quirk of the official forward
(docs/fidelity.md §U9)."""
import os

import numpy as np
import pytest
import torch

from sfmnet_plugin.archs.pil_resize import resize_as_8bit, upsample_lr_face
from sfmnet_plugin.archs.ufsrnet_arch import UFSRNet
from sfmnet_plugin.archs.ufsrnet_blocks import DistillNAFBlock, LayerNorm2d, haar_dwt, haar_iwt

KEYS = os.path.join('tests', 'data', 'ufsrnet_official_keys.txt')
GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data', 'golden', 'ufsrnet.npz')
# conv0 + gamma of the six blocks (4 x 147,712 at 128 channels, 2 x 36,992 at 64) + d_l2_Block2 (1,280)
UNUSED_PARAMETERS = 666_112


@pytest.fixture(scope='module')
def official_layout(official_key_listing):
    return official_key_listing(KEYS)


@pytest.fixture(scope='module')
def golden_network(official_layout, seeded_golden_network):
    """The default UFSRNet in float64 with the golden's seeded weights (drawn in the official key order)."""
    return seeded_golden_network(UFSRNet(upscale=1), official_layout, GOLDEN)


def official(x01):
    """[0, 1] -> the official [-1, 1] convention of the golden file."""
    return x01 * 2 - 1


def test_parameter_count_and_the_official_layout_load_strictly(official_layout):
    with torch.device('meta'):
        network = UFSRNet()
    assert sum(p.numel() for p in network.parameters()) == 4_156_518
    assert {key: (tuple(t.shape), t.dtype) for key, t in network.state_dict().items()} == official_layout
    assert list(network.state_dict()) == list(official_layout)  # the official order too
    state_dict = {key: torch.full(shape, 0.5, dtype=dtype) for key, (shape, dtype) in official_layout.items()}
    assert not UFSRNet().load_state_dict(state_dict, strict=True).missing_keys


def test_golden_output_from_the_128x128_upsampled_face(golden_network, golden_hr_input):
    with torch.no_grad():
        sr = golden_network(golden_hr_input)
    assert sr.dtype == torch.float64
    np.testing.assert_allclose(official(sr).numpy(), np.load(GOLDEN)['sr'], rtol=0, atol=1e-4)


def test_golden_output_from_the_16x16_lr(golden_network, golden_lr_face, golden_hr_input):
    lr = torch.from_numpy(np.array(golden_lr_face)).permute(2, 0, 1)[None].double() / 255
    assert torch.equal(upsample_lr_face(lr, 8, 8, '', 'UFSRNet'), golden_hr_input)  # the loader's image, exactly
    network = UFSRNet().double().eval()
    network.load_state_dict(golden_network.state_dict())
    with torch.no_grad():
        sr = network(lr)
    np.testing.assert_allclose(official(sr).numpy(), np.load(GOLDEN)['sr'], rtol=0, atol=1e-3)


def calls_and_grads(network, x):
    """How often each block runs in one forward, and the parameters a backward leaves without a gradient."""
    counts = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: counts.__setitem__(name, counts.get(name, 0) + 1))
             for name, module in network.named_modules() if name]
    try:
        network(x).sum().backward()
    finally:
        for hook in hooks:
            hook.remove()
    no_grad = {name for name, p in network.named_parameters() if p.grad is None}
    return counts, no_grad


def test_the_bottleneck_block_runs_twice_and_the_unused_modules_never_run():
    torch.manual_seed(0)
    network = UFSRNet(upscale=1)
    counts, no_grad = calls_and_grads(network, torch.rand(1, 3, 16, 16))
    assert counts['i_l2_Block2'] == 2 and counts['i_l2_Block1'] == 1 and counts['d_l2_Block1'] == 1
    assert 'd_l2_Block2' not in counts
    assert not [name for name in counts if name.endswith('conv0')]
    blocks = [name for name, module in network.named_modules() if isinstance(module, DistillNAFBlock)]
    assert no_grad == {'d_l2_Block2.weight', 'd_l2_Block2.bias'} | {
        f'{block}.{tensor}' for block in blocks for tensor in ('gamma', 'conv0.weight', 'conv0.bias')}
    assert sum(p.numel() for name, p in network.named_parameters() if name in no_grad) == UNUSED_PARAMETERS

    symmetric = UFSRNet(upscale=1, shared_bottleneck_block=False)  # the fix: level 2 built like levels 0 and 1
    counts, no_grad = calls_and_grads(symmetric, torch.rand(1, 3, 16, 16))
    assert counts['i_l2_Block2'] == 1 and counts['d_l2_Block2'] == 1
    assert sum(p.numel() for name, p in symmetric.named_parameters() if name in no_grad) == UNUSED_PARAMETERS - 1_280


def test_level_2_feeds_the_shared_block_without_an_activation():
    torch.manual_seed(0)
    network = UFSRNet(upscale=1).eval()
    seen = {}
    network.d_l2_Block1.register_forward_hook(lambda m, i, o: seen.setdefault('depthwise', o))
    network.i_l2_Block2.register_forward_pre_hook(lambda m, i: seen.setdefault('block_input', i[0]))
    with torch.no_grad():
        network(torch.rand(1, 3, 16, 16))
    assert (seen['depthwise'] < 0).any()  # levels 0 and 1 would have passed LeakyReLU(0.2) of it
    assert torch.equal(seen['block_input'], seen['depthwise'])


def test_the_output_is_tanh_of_the_leaky_tail_plus_the_upsampled_input():
    torch.manual_seed(0)
    network = UFSRNet().double().eval()
    lr = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    upsampled = resize_as_8bit(lr, (64, 64))
    tail = network.tail1
    with torch.no_grad():
        torch.nn.init.zeros_(tail.weight)
        torch.nn.init.zeros_(tail.bias)
        torch.testing.assert_close(network(lr), upsampled, rtol=0, atol=1e-15)  # tanh(0) = 0: the residual alone
        tail.bias.fill_(50.0)  # tanh saturates at 1 ([-1, 1] units), i.e. + 0.5 here: the output is not clamped
        torch.testing.assert_close(network(lr), upsampled + 0.5, rtol=0, atol=1e-15)
        tail.bias.fill_(-50.0)  # LeakyReLU(0.2) before the tanh: -50 -> -10
        torch.testing.assert_close(network(lr), upsampled + np.tanh(-10.0) / 2, rtol=0, atol=1e-15)


def test_haar_transform_layout_and_exact_inverse():
    cell = torch.tensor([[1.0, 3.0], [2.0, 4.0]]).view(1, 1, 2, 2)  # a = 1 (even row/col), b = 2, c = 3, d = 4
    assert haar_dwt(cell).flatten().tolist() == [5.0, 2.0, 1.0, 0.0]  # LL, HL, LH, HH
    x = torch.randn(2, 5, 8, 6, dtype=torch.float64)
    assert torch.allclose(haar_iwt(haar_dwt(x)), x, rtol=0, atol=1e-15)
    assert haar_iwt(haar_dwt(x.float())).dtype == torch.float32


def test_layer_norm_normalises_each_pixel_over_the_channels():
    norm = LayerNorm2d(6)
    x = torch.randn(2, 6, 3, 3, dtype=torch.float64) * 5 + 2
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(norm.double()(x), expected, atol=1e-12)


def test_official_init_and_the_zero_started_betas():
    torch.manual_seed(0)
    network = UFSRNet(official_init=True)
    weights = torch.cat([m.weight.flatten() for m in network.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 1e-3
    assert all(not m.bias.any() for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    assert all(m.weight.eq(1).all() and not m.bias.any() for m in network.modules() if isinstance(m, LayerNorm2d))
    assert all(not p.any() for name, p in network.named_parameters() if name.endswith(('beta', 'gamma')))


def test_sizes_and_errors():
    torch.manual_seed(0)
    network = UFSRNet().eval()
    with torch.no_grad():
        assert network(torch.rand(1, 3, 3, 5)).shape == (1, 3, 24, 40)
    with pytest.raises(ValueError, match=r'UFSRNet got a 12x12 input at x1.*divisible by 8'):
        UFSRNet(upscale=1)(torch.rand(1, 3, 12, 12))
    with pytest.raises(ValueError, match='UFSRNet upscale must be a positive integer'):
        UFSRNet(upscale=0)
