"""NaN and infinite weights are refused in both formats (.pth and .safetensors) by every tool and loader.

The check sits in the readers every weight file passes through (``load_torch_file`` for ``.pth``,
``load_safetensors_checkpoint`` for ``.safetensors``, both behind ``load_checkpoint_file``), so each tool below
refuses the file in one line naming the tensor, before it writes anything.
"""
import ast
import json
import os
import sys
from os import path as osp

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import base_model
from PIL import Image

from sfmnet_cli import benchmark, convert_official, export, infer, restore
from sfmnet_plugin.checkpoints.io import save_checkpoint_file
from sfmnet_plugin.utils.safe_loading import NonFiniteWeightsError

TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL_KEYS = osp.join(REPO_ROOT, 'tests', 'data', 'sfmnet_official_keys.txt')
FORMATS = ('pth', 'safetensors')
VALUES = {'nan': float('nan'), 'inf': float('inf')}


def broken(state, value):
    """``state`` with one element of its last floating-point tensor set to ``value``."""
    state = {key: tensor.clone() for key, tensor in state.items()}
    key = [key for key, tensor in state.items() if tensor.is_floating_point()][-1]
    state[key].view(-1)[0] = value
    return state, key


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """``{(kind, format, value): (path, bad tensor name)}``: the tiny network and an official discriminator."""
    folder = tmp_path_factory.mktemp('nonfinite')
    torch.manual_seed(0)
    network = build_network(dict(TINY)).state_dict()
    generator = torch.Generator().manual_seed(0)
    official = {}
    with open(OFFICIAL_KEYS, encoding='utf-8') as f:
        for line in f:
            if line.startswith('D '):
                _, key, shape = line.split(maxsplit=2)
                official[key] = torch.randn(ast.literal_eval(shape.strip()), generator=generator)
    made = {}
    for kind, state in (('network', network), ('official', official)):
        for fmt in FORMATS:
            for name, value in VALUES.items():
                bad, key = broken(state, value)
                path = str(folder / f'{kind}_{name}.{fmt}')
                if kind == 'official' and fmt == 'pth':
                    torch.save(bad, path)  # a released checkpoint is a plain state dict
                else:
                    save_checkpoint_file({'params': bad}, path, network_format=fmt)
                made[kind, fmt, name] = path, key
    return made


def run_infer(path, tmp_path):
    os.makedirs(tmp_path / 'lr')
    Image.new('RGB', (8, 8)).save(tmp_path / 'lr' / 'a.png')
    return infer.main([str(tmp_path / 'lr'), '--output', str(tmp_path / 'out'), '--checkpoint', path,
                       '--arch-json', json.dumps(TINY)])


def run_restore(path, tmp_path):
    Image.new('RGB', (32, 32)).save(tmp_path / 'p.png')
    return restore.main([str(tmp_path / 'p.png'), '--output', str(tmp_path / 'out'), '--checkpoint', path,
                         '--arch-json', json.dumps(TINY), '--device', 'cpu'])


def run_export(path, tmp_path):
    return export.main(['--checkpoint', path, '--arch-json', json.dumps(TINY), '--lr-size', '8', '--output',
                        str(tmp_path / 'out.onnx')])


def run_benchmark(path, tmp_path):
    os.makedirs(tmp_path / 'hr')
    Image.new('RGB', (32, 32)).save(tmp_path / 'hr' / 'a.png')
    return benchmark.main(['--gt', str(tmp_path / 'hr'), '--scale', '4', '--network', 'Net', path, '--output',
                           str(tmp_path / 'out'), '--metrics', 'sfmnet', '--latency-repeats', '0', '--sheet-images',
                           '0', '--no-progress', '--device', 'cpu'])


def run_convert(path, tmp_path):
    return convert_official.main([path, str(tmp_path / 'out.pth')])


def run_pretrain_network_g(path, tmp_path):
    """What BasicSR's ``load_network`` (``path.pretrain_network_g``, resumed networks) reads a file with."""
    try:
        base_model.torch.load(path, map_location='cpu')
    except NonFiniteWeightsError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


LOADERS = {'sfmnet-infer': (run_infer, 'network'), 'sfmnet-restore': (run_restore, 'network'),
           'sfmnet-export': (run_export, 'network'), 'sfmnet-benchmark': (run_benchmark, 'network'),
           'sfmnet-convert-official': (run_convert, 'official'),
           'path.pretrain_network_g': (run_pretrain_network_g, 'network')}


@pytest.mark.parametrize('value', VALUES)
@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('loader', LOADERS)
def test_non_finite_weights_are_refused_by_every_loader_in_both_formats(files, loader, fmt, value, tmp_path,
                                                                         capsys):
    run, kind = LOADERS[loader]
    path, key = files[kind, fmt, value]
    assert run(path, tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'Traceback' not in err, err
    assert path in err and 'not finite' in err and key.split('.')[-1] in err, err
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.onnx').exists() \
        and not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('value', sorted(VALUES))
def test_an_onnx_file_with_non_finite_weights_is_refused_by_both_onnx_loaders(tmp_path, value):
    """The third format: ONNX Runtime would run the graph and return NaN images (sfmnet-infer's onnxruntime backend)
    or NaN embeddings (the ArcFace identity metric)."""
    onnx = pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    from onnx import helper, numpy_helper

    from sfmnet_plugin.inference.onnx import ExportError, OnnxNetwork
    from sfmnet_plugin.metrics.face_identity_metric import onnx_session

    weight = torch.ones(3, 3, 1, 1).numpy()
    weight[0, 0, 0, 0] = VALUES[value]
    graph = helper.make_graph(
        [helper.make_node('Conv', ['lr', 'conv.weight'], ['sr'])], 'tiny',
        [helper.make_tensor_value_info('lr', onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info('sr', onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [numpy_helper.from_array(weight, 'conv.weight')])
    path = tmp_path / 'bad.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), str(path))
    with pytest.raises(ExportError, match=f'{path}: refused, weight conv.weight is not finite'):
        OnnxNetwork(str(path))
    with pytest.raises(ValueError, match='refused, weight conv.weight is not finite'):
        onnx_session(str(path))
