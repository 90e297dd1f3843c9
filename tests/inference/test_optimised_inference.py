"""The optimised SFMNet computes the frozen reference's function, bf16 inference, DFT-as-matmul, and ONNX
export + ONNX Runtime inference. Tolerances are the networks' own measured sensitivity to a 1e-7 input change
(SFMNet's phase() jumps by 2 pi on the negative real axis, see FFTBlock), never tighter than float32 rounding."""
import copy
import json
import os
import sys
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.archs.spectral import atan2_real, irfft2_real, rfft2_real
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.onnx import dft_by_matmul
from sfmnet_plugin.utils.numerics import input_sensitivity, psnr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                'benchmarks'))
from sfmnet_reference import ReferenceSFMNet  # noqa: E402

TINY = dict(num_feat=8, num_heads=2)
FLOAT32_ROUNDING = 1e-5  # floor of every tolerance: rounding of a reordered float32 computation


def tolerance(net, inputs):
    """Twice the network's measured sensitivity: that measurement is the largest output change over 3 random 1e-7
    input changes, a sample of what any reordering of the sums does (one reordering exceeded it by 0.7%)."""
    return 2 * max(input_sensitivity(net, inputs), FLOAT32_ROUNDING)


@pytest.fixture(scope='module')
def tiny_pair():
    torch.manual_seed(0)
    # the frozen reference upsamples with the float resize (it predates the default 8-bit input step)
    net = SFMNet(**TINY, lr_resize='pil_float')
    reference = ReferenceSFMNet(**TINY)
    reference.load_state_dict(net.state_dict(), strict=True)
    return net, reference


def output_of(net, index, x):
    """Output ``index`` of ``(sr, sr_frequency)``: the frequency branch is more sensitive than the result."""
    return net(x, return_frequency=True)[index]


def test_optimised_network_computes_the_reference_function_on_real_faces(tiny_pair, real_faces):
    net, reference = tiny_pair
    lr = real_faces(16)
    with torch.no_grad():
        ours, theirs = net(lr, return_frequency=True), reference(lr, return_frequency=True)
    for index, (a, b) in enumerate(zip(ours, theirs)):  # each output against its own sensitivity
        assert float((a - b).abs().max()) <= tolerance(partial(output_of, reference, index), lr)


def test_optimised_network_is_the_reference_function_in_float64(tiny_pair, real_faces):
    net, reference = (copy.deepcopy(model).double() for model in tiny_pair)
    lr = real_faces(16).double()
    with torch.no_grad():
        for a, b in zip(net(lr, return_frequency=True), reference(lr, return_frequency=True)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_optimised_network_has_the_reference_gradients(tiny_pair, real_faces):
    # In float64: float32 gradients of this network move by up to ~60% (relative) when the input moves by 1e-7
    # (the phase flips of FFTBlock), so two float32 orderings of one function cannot be compared tightly.
    net, reference = (copy.deepcopy(model).double() for model in tiny_pair)
    lr, target = real_faces(8).double(), real_faces(64).double()  # x8: 8 -> 64
    grads = []
    for model in (net, reference):
        sr, sr_frequency = model(lr, return_frequency=True)
        ((sr - target).abs().mean() + (sr_frequency - target).abs().mean()).backward()
        grads.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-7, atol=1e-12, msg=name)


@pytest.mark.parametrize('height, width', [(8, 6), (7, 5), (16, 9)])
def test_dft_matmuls_equal_torch_fft_in_float64(height, width):
    x = torch.randn(2, 3, height, width, dtype=torch.float64)
    spectrum = torch.fft.rfft2(x)
    real, imag = rfft2_real(x)
    torch.testing.assert_close(real, spectrum.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(imag, spectrum.imag, rtol=0, atol=1e-12)
    assert not torch.signbit(imag[..., 0, 0]).any()  # a real DC bin has +0.0, so its phase is +pi when negative
    other = torch.randn_like(spectrum)
    torch.testing.assert_close(irfft2_real(other.real, other.imag, (height, width)),
                               torch.fft.irfft2(other, s=(height, width)), rtol=0, atol=1e-12)
    torch.testing.assert_close(atan2_real(spectrum.imag, spectrum.real), spectrum.angle(), rtol=0, atol=1e-12)


def test_network_with_dft_matmuls_is_the_same_function_in_float64(real_faces):
    torch.manual_seed(0)
    net = SFMNet(**TINY).double().eval()
    lr = real_faces(16).double()
    with torch.no_grad():
        expected = net(lr)
        with dft_by_matmul(net):
            assert all(block.dft_by_matmul for block in net.modules() if hasattr(block, 'dft_by_matmul'))
            actual = net(lr)
    assert not any(block.dft_by_matmul for block in net.modules() if hasattr(block, 'dft_by_matmul'))
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    options = {'type': 'SFMNet', 'upscale': 1, 'num_levels': 1, **TINY}
    net = SFMNet(**{k: v for k, v in options.items() if k != 'type'}).eval()
    path = tmp_path_factory.mktemp('export') / 'tiny.pth'
    torch.save({'params': net.state_dict()}, path)
    return net, options, path


def test_bf16_inference_gives_finite_images_close_to_fp32(tiny_checkpoint, real_faces):
    _, options, path = tiny_checkpoint
    lr = real_faces(32)
    fp32 = FaceRestorer(str(path), network=options, device='cpu').restore(lr)
    bf16 = FaceRestorer(str(path), network=options, device='cpu', precision='bf16').restore(lr)
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert psnr(bf16, fp32) > 35  # bf16 keeps 8 bits of mantissa; the FFTs stay float32
    with pytest.raises(InferenceError, match='precision must be one of'):
        FaceRestorer(str(path), network=options, precision='int8')


def is_channels_last(net):
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    return bool(convs) and all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs)


def test_reduced_precision_runs_channels_last_and_fp32_stays_the_reference_layout(tiny_checkpoint, real_faces):
    _, options, path = tiny_checkpoint
    assert is_channels_last(FaceRestorer(str(path), network=options, device='cpu', precision='bf16').net)
    assert not is_channels_last(FaceRestorer(str(path), network=options, device='cpu').net)
    fp32_nhwc = FaceRestorer(str(path), network=options, device='cpu', channels_last=True)
    assert is_channels_last(fp32_nhwc.net)
    lr = real_faces(32)
    net = tiny_checkpoint[0]
    with torch.no_grad():
        assert float((fp32_nhwc.restore(lr) - net(lr)).abs().max()) <= tolerance(net, lr)


def test_compiled_restorer_computes_the_same_images(tiny_checkpoint, real_faces):
    net, options, path = tiny_checkpoint
    restorer = FaceRestorer(str(path), network=options, device='cpu', compile=True)
    assert isinstance(restorer.net, SFMNet)  # the plain module stays available (export, hooks, counts)
    lr = real_faces(32)
    with torch.no_grad():
        assert float((restorer.restore(lr) - net(lr)).abs().max()) <= tolerance(net, lr)


@pytest.fixture(scope='module')
def exported(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip('onnxruntime')
    from sfmnet_cli.export import main

    net, options, checkpoint = tiny_checkpoint
    output = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    assert main(['--checkpoint', str(checkpoint), '--arch-json', json.dumps(options), '--lr-size', '32',
                 '--output', str(output)]) == 0
    return net, options, output, main


def test_onnx_runtime_matches_torch_on_real_faces_within_the_sensitivity(exported, real_faces):
    net, options, onnx_path, _ = exported
    restorer = FaceRestorer(str(onnx_path), backend='onnxruntime', device='cpu')
    assert restorer.options == options and restorer.num_parameters == sum(p.numel() for p in net.parameters())
    lr = real_faces(32)  # upscale 1: the exact input, no resize in between
    sr = restorer.restore(torch.cat([lr, lr.flip(-1), lr[:1]]))  # the batch dimension is dynamic
    with torch.no_grad():
        expected = net(torch.cat([lr, lr.flip(-1), lr[:1]]))
    assert sr.shape == expected.shape == (5, 3, 32, 32)
    assert float((sr - expected).abs().max()) <= tolerance(net, lr)


def test_export_refuses_to_overwrite_and_onnx_backend_errors(exported, tmp_path, capsys):
    _, _, onnx_path, main = exported
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(onnx_path).st_mode & 0o777 == 0o666 & ~umask  # the usual mode, not mkstemp's 0o600
    before = os.path.getmtime(onnx_path)
    assert main(['--checkpoint', 'unused.pth', '--lr-size', '32', '--output', str(onnx_path)]) == 1
    assert 'exists' in capsys.readouterr().err and os.path.getmtime(onnx_path) == before
    restorer = FaceRestorer(str(onnx_path), backend='onnxruntime', device='cpu')
    with pytest.raises(ValueError, match='exported for 32x32'):
        restorer.restore(torch.rand(1, 3, 16, 16))
    with pytest.raises(InferenceError, match='precision fp32'):
        FaceRestorer(str(onnx_path), backend='onnxruntime', precision='bf16')
    with pytest.raises(InferenceError, match='needs an .onnx file'):
        FaceRestorer('model.pth', backend='onnxruntime')
    with pytest.raises(InferenceError, match='torch backend'):
        FaceRestorer(str(onnx_path), backend='onnxruntime', compile=True)


def test_sfmnet_infer_with_the_onnxruntime_backend(exported, tmp_path, real_faces):
    from sfmnet_cli.infer import main as infer

    net, _, onnx_path, _ = exported
    face = (real_faces(32)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(face).save(tmp_path / 'face.png')
    assert infer([str(tmp_path / 'face.png'), '--output', str(tmp_path / 'sr'), '--checkpoint', str(onnx_path),
                  '--backend', 'onnxruntime', '--device', 'cpu']) == 0
    written = np.asarray(Image.open(tmp_path / 'sr' / 'face.png'), dtype=np.float32)
    lr = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255.
    with torch.no_grad():
        expected = net(lr)[0].clamp(0, 1) * 255
    # rounding to 8 bits can move a value by one grey level on top of the network's own sensitivity
    assert np.abs(written - expected.permute(1, 2, 0).numpy()).max() <= 1 + 255 * tolerance(net, lr)


def test_sfmnet_infer_compile_and_bf16_write_the_same_faces(tiny_checkpoint, tmp_path, real_faces):
    from sfmnet_cli.infer import main as infer

    net, options, checkpoint = tiny_checkpoint
    face = (real_faces(32)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(face).save(tmp_path / 'face.png')
    written = {}
    for name, flags in (('plain', []), ('compiled', ['--compile']), ('bf16', ['--precision', 'bf16'])):
        assert infer([str(tmp_path / 'face.png'), '--output', str(tmp_path / name), '--checkpoint', str(checkpoint),
                      '--arch-json', json.dumps(options), '--device', 'cpu', *flags]) == 0
        written[name] = np.asarray(Image.open(tmp_path / name / 'face.png'), dtype=np.float32)
    lr = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255.
    assert np.abs(written['compiled'] - written['plain']).max() <= 1 + 255 * tolerance(net, lr)
    assert 10 * np.log10(255**2 / np.mean((written['bf16'] - written['plain'])**2)) > 35
