"""The networks' default input step is PIL's resize of the 8-bit LR, pixel for pixel (the official loaders' input)."""
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize, pil_uint8_resize, upsample_lr_face
from sfmnet_plugin.demo.photo_sources import public_domain_photos

# (LR, HR) sizes the networks use: SFMNet/SMLNet x2/x4/x8/x16 at 128, SPARNet x8, SPARNetHD-size faces at 512
FAMILY_SIZES = [(64, 128), (32, 128), (16, 128), (8, 128), (16, 32), (64, 512), (128, 512), (32, 512)]
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                   reason='no CUDA device on this machine'))]


def pil_resize_rgb(image_hwc, out_hw):
    return np.asarray(Image.fromarray(image_hwc).resize((out_hw[1], out_hw[0]), Image.Resampling.BICUBIC))


def torch_resize_rgb(image_hwc, out_hw, device='cpu'):
    tensor = torch.from_numpy(np.ascontiguousarray(image_hwc)).permute(2, 0, 1)[None].to(device)
    return pil_uint8_resize(tensor, out_hw)[0].permute(1, 2, 0).cpu().numpy()


@pytest.fixture(scope='module')
def real_faces(golden_lr_face, public_domain_face_boxes):
    """The golden 16 x 16 LR face and the faces of the two public-domain photos the tests use, as 8-bit RGB."""
    faces = [golden_lr_face]
    for photo in public_domain_photos():
        left, top, side = public_domain_face_boxes[photo.key]
        faces.append(np.asarray(photo.image.convert('RGB').crop((left, top, left + side, top + side))))
    return faces


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('lr_size, hr_size', FAMILY_SIZES)
def test_equals_pil_on_random_and_real_8bit_faces(lr_size, hr_size, device, real_faces):
    rng = np.random.default_rng(lr_size * 1000 + hr_size)
    images = [rng.integers(0, 256, (lr_size, lr_size, 3), dtype=np.uint8),
              (rng.integers(0, 2, (lr_size, lr_size, 3)) * 255).astype(np.uint8)]  # worst over- and undershoot
    for face in real_faces:  # a real face shrunk to the LR size as an 8-bit image, then upsampled
        images.append(pil_resize_rgb(face, (lr_size, lr_size)))
    for image in images:
        np.testing.assert_array_equal(torch_resize_rgb(image, (hr_size, hr_size), device),
                                      pil_resize_rgb(image, (hr_size, hr_size)))


def test_equals_pil_on_every_combination_of_small_sizes():
    """Up, down, one axis only, non-square, 1-pixel images: both pass orders of PIL's resize are exercised."""
    rng = np.random.default_rng(0)
    sizes = (1, 2, 3, 5, 8, 13, 16, 29)
    for in_h, in_w, out_h, out_w in itertools.product(sizes, repeat=4):
        image = rng.integers(0, 256, (in_h, in_w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(torch_resize_rgb(image, (out_h, out_w)), pil_resize_rgb(image, (out_h, out_w)),
                                      err_msg=f'{in_h}x{in_w} -> {out_h}x{out_w}')


@pytest.mark.parametrize('device', DEVICES)
def test_upsample_lr_face_is_the_loaders_input_from_the_float_lr(device, golden_lr_face):
    """The LR as the datasets give it (8-bit PNG / 255, float32) -> PIL's 8-bit upsampled image / 255, exactly."""
    lr = torch.from_numpy(np.array(golden_lr_face)).permute(2, 0, 1)[None].float().div(255).to(device)
    upsampled = upsample_lr_face(lr, 8, 8, 'a test', 'SFMNet')
    expected = torch.from_numpy(pil_resize_rgb(golden_lr_face, (128, 128))).permute(2, 0, 1)[None].float() / 255
    assert upsampled.dtype == torch.float32 and upsampled.device.type == device
    assert torch.equal(upsampled.cpu(), expected)
    float_path = upsample_lr_face(lr, 8, 8, 'a test', 'SFMNet', lr_resize='pil_float').cpu()
    assert torch.allclose(float_path, pil_bicubic_resize(lr.cpu(), 128))
    assert (float_path - expected).abs().max() * 255 > 1  # what the option changes: rounding and clipping


def test_values_outside_the_8bit_range_are_clipped_and_the_lr_gets_the_float_resizes_gradient():
    lr = torch.tensor([[[[-0.2, 1.3], [0.5, 2 / 255]]]], requires_grad=True)
    upsampled = upsample_lr_face(lr, 2, 1, 'a test', 'SPARNet')
    levels = torch.tensor([[[[0, 255], [128, 2]]]], dtype=torch.uint8)  # round(255 x) clipped to [0, 255]
    assert torch.equal(upsampled * 255, pil_uint8_resize(levels, 4).float())  # the value: the 8-bit image
    weight = torch.randn(1, 1, 4, 4)
    (gradient,) = torch.autograd.grad((upsampled * weight).sum(), lr)
    smooth = lr.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((pil_bicubic_resize(smooth, 4) * weight).sum(), smooth)
    torch.testing.assert_close(gradient, expected, rtol=0, atol=0)  # straight-through: the float resize's gradient
    with torch.no_grad():
        assert not upsample_lr_face(lr, 2, 1, 'a test', 'SPARNet').requires_grad


def test_bad_lr_resize_and_float_images_are_rejected():
    with pytest.raises(ValueError, match="SFMNet lr_resize must be one of .*'pil_uint8'.*got 'bilinear'"):
        upsample_lr_face(torch.rand(1, 3, 4, 4), 2, 1, 'a test', 'SFMNet', lr_resize='bilinear')
    with pytest.raises(TypeError, match='integer tensor'):
        pil_uint8_resize(torch.rand(1, 3, 4, 4), 8)


class InputStep(torch.nn.Module):
    """The networks' default input step alone: float LR in [0, 1] -> PIL's 8-bit upsampled image / 255."""

    def __init__(self, upscale, lr_resize='pil_uint8'):
        super().__init__()
        self.upscale, self.lr_resize = upscale, lr_resize

    def forward(self, lr):
        return upsample_lr_face(lr, self.upscale, 1, 'a test', 'SFMNet', lr_resize=self.lr_resize)


@pytest.mark.parametrize('exporter', ['torchscript', 'dynamo'])
@pytest.mark.parametrize('lr_size, upscale', [(16, 8), (32, 4), (16, 4)])  # 16 -> 128, 32 -> 128, x4 from 16
def test_both_onnx_exporters_give_pils_image_for_any_batch(tmp_path, exporter, lr_size, upscale, golden_lr_face):
    """Integer arithmetic in the graph: each exporter's ONNX for the step gives PIL's image bit for bit."""
    pytest.importorskip('onnxruntime')
    from sfmnet_plugin.inference.onnx import OnnxNetwork, export_onnx

    path = export_onnx(InputStep(upscale), str(tmp_path / 'step.onnx'), (lr_size, lr_size), exporter=exporter)
    onnx_step = OnnxNetwork(path)
    assert onnx_step.metadata['exporter'] == exporter
    rng = np.random.default_rng(lr_size * 10 + upscale)
    images = np.stack([rng.integers(0, 256, (lr_size, lr_size, 3), dtype=np.uint8),
                       (rng.integers(0, 2, (lr_size, lr_size, 3)) * 255).astype(np.uint8),  # worst overshoot
                       pil_resize_rgb(golden_lr_face, (lr_size, lr_size))])
    hr_size = lr_size * upscale
    expected = np.stack([pil_resize_rgb(image, (hr_size, hr_size)) for image in images])
    lr = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    for rows in (slice(0, 3), slice(1, 2)):  # batch 3 and batch 1; the export traced batch 2
        up = onnx_step(lr[rows]).numpy().transpose(0, 2, 3, 1) * 255
        np.testing.assert_array_equal(np.rint(up).astype(np.uint8), expected[rows])


def test_torch_export_on_a_cold_cache_leaves_the_eager_step_intact(golden_lr_face):
    """torch.export (the dynamo exporter's first stage) runs the cached constant builders on fake tensors; none of
    them may stay in the cache, or every later eager call would return a fake tensor."""
    lr = torch.from_numpy(np.array(golden_lr_face)).permute(2, 0, 1)[None].float() / 255
    lr = torch.nn.functional.interpolate(lr, size=(11, 13), mode='area')  # sizes no other test resizes from
    for lr_resize in ('pil_uint8', 'pil_float'):
        step = InputStep(7, lr_resize)
        torch.export.export(step, (lr,))
        eager = step(lr)
        assert type(eager) is torch.Tensor and eager.shape == (1, 3, 77, 91)
        assert torch.equal(eager, upsample_lr_face(lr, 7, 1, 'a test', 'SFMNet', lr_resize=lr_resize))


def test_every_network_with_the_pil_input_step_offers_the_float_path():
    """The 8-bit step is each network's default; the float resize stays an option of every one of them."""
    import inspect

    from basicsr.utils.registry import ARCH_REGISTRY

    from sfmnet_plugin.archs import pil_resize

    # a network whose module, or whose base class's module, calls the step (SMLNet's forward is SFMNet's)
    with_the_step = [cls for _, cls in ARCH_REGISTRY if any(
        getattr(inspect.getmodule(base), 'upsample_lr_face', None) is pil_resize.upsample_lr_face
        for base in cls.__mro__)]
    assert {'SFMNet', 'SPARNet', 'SMLNet', 'WFEN', 'CTCNet', 'UFSRNet'} <= {cls.__name__ for cls in with_the_step}
    for cls in with_the_step:
        assert inspect.signature(cls).parameters['lr_resize'].default == 'pil_uint8', cls.__name__
