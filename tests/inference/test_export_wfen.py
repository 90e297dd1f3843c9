"""WFEN through ``sfmnet-export``: its ops (circular roll, LayerNorm, grouped transposed convolution for the inverse
Haar transform, L2 normalisation, GELU, the PIL-bicubic input step) export to ONNX and ONNX Runtime reproduces
PyTorch within the network's own sensitivity."""
import json

import pytest
import torch

from sfmnet_plugin.archs.wfen_arch import WFEN
from sfmnet_plugin.inference import FaceRestorer
from sfmnet_plugin.utils.numerics import input_sensitivity

# narrow, with a shifted window-1 block (Transformer.0) and the x8 input step inside the graph
OPTIONS = {'type': 'WFEN', 'upscale': 8, 'min_ch': 4, 'res_depth': 2}


def test_wfen_exports_and_onnx_runtime_matches_torch(tmp_path):
    pytest.importorskip('onnxruntime')
    from sfmnet_cli.export import main

    torch.manual_seed(0)
    net = WFEN(**{k: v for k, v in OPTIONS.items() if k != 'type'}).eval()
    checkpoint, output = tmp_path / 'wfen.pth', tmp_path / 'wfen.onnx'
    torch.save({'params': net.state_dict()}, checkpoint)
    assert main(['--checkpoint', str(checkpoint), '--arch-json', json.dumps(OPTIONS), '--lr-size', '4',
                 '--output', str(output)]) == 0
    restorer = FaceRestorer(str(output), backend='onnxruntime', device='cpu')
    assert restorer.options == OPTIONS and restorer.num_parameters == sum(p.numel() for p in net.parameters())
    lr = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(lr)
    sr = restorer.restore(lr)
    assert sr.shape == expected.shape == (3, 3, 32, 32)
    # ONNX Runtime's kernels round in another order than torch's: float32 rounding through the layers (1e-5 here), or
    # the network's own amplification of a 1e-7 input change where that is larger
    assert float((sr - expected).abs().max()) <= max(2 * input_sensitivity(net, lr), 1e-5)
