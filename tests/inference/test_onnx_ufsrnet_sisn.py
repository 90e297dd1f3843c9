"""UFSRNet and SISN export to ONNX (Haar transforms by strided slices and reshapes, LayerNorm by hand, space-to-depth,
nearest upsampling, split-attention softmax, pixel shuffle) and ONNX Runtime gives the torch output."""
import numpy as np
import pytest
import torch

from sfmnet_plugin.archs.sisn_arch import SISN
from sfmnet_plugin.archs.ufsrnet_arch import UFSRNet
from sfmnet_plugin.inference import FaceRestorer
from sfmnet_plugin.inference.onnx import export_onnx

pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('make, options', [
    (lambda: UFSRNet(num_feat=4), {'type': 'UFSRNet', 'upscale': 8, 'num_feat': 4}),
    (lambda: SISN(upscale=8, num_groups=1, num_blocks=2, num_feat=8),
     {'type': 'SISN', 'upscale': 8, 'num_groups': 1, 'num_blocks': 2, 'num_feat': 8}),
], ids=['UFSRNet', 'SISN'])
def test_onnx_runtime_matches_torch(tmp_path, make, options):
    torch.manual_seed(0)
    net = make().eval()
    path = export_onnx(net, str(tmp_path / 'net.onnx'), lr_size=(16, 16), network_options=options)
    lr = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        expected = net(lr).numpy()
    restorer = FaceRestorer(path, backend='onnxruntime', device='cpu')
    np.testing.assert_allclose(restorer.net(lr).numpy(), expected, rtol=0, atol=1e-4)
