"""The ONNX export says what it does, and a network without FFT blocks goes through the fast TorchScript exporter."""
import pytest
import torch

from sfmnet_plugin.archs.sparnet_arch import SPARNet
from sfmnet_plugin.inference.onnx import OnnxNetwork, export_onnx


def test_sparnet_exports_by_tracing_with_progress_lines_and_runs_in_onnx_runtime(tmp_path):
    pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    net = SPARNet(upscale=8, min_ch=8, max_ch=16, in_size=64, out_size=64, min_feat_size=16, res_depth=1).eval()
    lines = []
    path = export_onnx(net, str(tmp_path / 'sparnet.onnx'), (8, 8), progress=lines.append)
    assert lines[0] == 'exporting SPARNet for 8x8 LR inputs (TorchScript-based exporter) ...'
    assert not any('dynamo' in line for line in lines) and lines[-1] == 'checking the ONNX file ...'
    lr = torch.randint(0, 256, (3, 3, 8, 8)) / 255  # batch 3: the batch is dynamic
    with torch.no_grad():
        expected = net(lr)
    assert float((OnnxNetwork(path)(lr) - expected).abs().max()) < 1e-5
