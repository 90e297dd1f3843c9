"""The command lines' copies of the library's choices and defaults are the library's.

``sfmnet_cli`` reads the command line before the library is imported, so the choices the library defines (the LR
methods, precisions, demo networks, metric groups, file formats, the preparation scripts' defaults) are literals
there; this file is where each is checked against the library's value, and where ``sfmnet-train``/``-test``'s
front parser is checked against the launcher's own parser and BasicSR's ``parse_options``.
"""
import argparse

import pytest

from sfmnet_cli import (
    arguments,
    benchmark,
    convert,
    convert_official,
    demo,
    export,
    infer,
    prepare_celeba,
    prepare_ffhq,
    prepare_helen,
    restore,
)
from sfmnet_cli import test as test_cli
from sfmnet_cli import train as train_cli
from sfmnet_plugin import benchmark as benchmark_library
from sfmnet_plugin.checkpoints.io import NETWORK_FORMATS
from sfmnet_plugin.data.downsample import DOWNSAMPLERS
from sfmnet_plugin.demo import end_to_end
from sfmnet_plugin.inference import onnx
from sfmnet_plugin.inference.face_restorer import PRECISIONS
from sfmnet_plugin.inference.whole_photo import SECOND_PASS_MODES
from sfmnet_plugin.launch import cli as launcher
from sfmnet_plugin.prep import celeba, ffhq, helen


def test_every_copied_choice_and_default_is_the_library_value():
    assert sorted(arguments.DOWNSAMPLERS) == sorted(DOWNSAMPLERS)
    assert sorted(infer.PRECISIONS) == sorted(PRECISIONS)
    assert restore.SECOND_PASS_MODES == tuple(SECOND_PASS_MODES)
    assert export.DEFAULT_OPSET == onnx.DEFAULT_OPSET
    assert benchmark.ALL_METRICS == tuple(benchmark_library.ALL_METRICS)
    assert sorted(convert.FORMATS) == sorted(convert_official.FORMATS) == sorted(NETWORK_FORMATS)
    assert (demo.NETWORK_LABELS, demo.DEFAULT_NETWORKS, demo.FAMILY, demo.PRESETS, demo.DEFAULT_THREADS) == (
        tuple(end_to_end.NETWORK_LABELS), tuple(end_to_end.DEFAULT_NETWORKS), tuple(end_to_end.FAMILY),
        tuple(end_to_end.PRESETS), end_to_end.DEFAULT_THREADS)
    assert (prepare_celeba.DEFAULT_MARGIN, prepare_celeba.DEFAULT_MTCNN_MARGIN, prepare_celeba.DEFAULT_MIN_CROP,
            prepare_celeba.DEFAULT_MTCNN_MIN_CROP, prepare_celeba.DEFAULT_OUT) == (
        celeba.DEFAULT_MARGIN, celeba.DEFAULT_MTCNN_MARGIN, celeba.DEFAULT_MIN_CROP, celeba.DEFAULT_MTCNN_MIN_CROP,
        celeba.DEFAULT_OUT)
    assert prepare_celeba.PROTOCOLS == tuple(sorted(celeba.IMAGE_DIRS))
    assert prepare_celeba.SPLITS == tuple(celeba.PARTITION_SPLITS.values())
    assert (prepare_ffhq.DEFAULT_OUT, prepare_ffhq.IMAGE_FOLDER, prepare_ffhq.SPLITS) == (
        ffhq.DEFAULT_OUT, ffhq.IMAGE_FOLDER, tuple(ffhq.SPLITS))
    assert (prepare_ffhq.HR_SIZE, prepare_ffhq.SCALES, prepare_ffhq.MIN_CROP_SIZE) == (
        ffhq.DEFAULT_SPEC.hr_size, tuple(ffhq.DEFAULT_SPEC.scales), ffhq.DEFAULT_SPEC.min_crop_size)
    assert (prepare_helen.DEFAULT_MARGIN, prepare_helen.DEFAULT_OUT) == (helen.DEFAULT_MARGIN, helen.DEFAULT_OUT)


def described(parser):
    """Everything a parser accepts and says, option by option."""
    return [(action.option_strings, action.dest, action.nargs, action.const, action.default, action.type,
             action.choices, action.required, action.help, action.metavar, type(action).__name__)
            for action in parser._actions]


def basicsr_parser(stage):
    """The parser ``basicsr.utils.options.parse_options`` builds for ``stage``, caught when it parses."""
    from basicsr.utils import options

    class Caught(Exception):
        pass

    def catch(parser, *args, **kwargs):
        raise Caught(parser)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = catch
    try:
        options.parse_options('.', is_train=stage == 'train')
    except Caught as caught:
        return caught.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError('parse_options parsed no command line')


@pytest.mark.parametrize('stage, front', [('train', train_cli), ('test', test_cli)])
def test_the_launcher_front_is_the_launcher_parser(stage, front):
    """``sfmnet-train``/``-test`` parse before torch is imported with the launcher's parser, run from its file: the
    same options, defaults, help and manual, so the front accepts exactly what the launcher then parses again."""
    front_parser, original = front.build_parser(), launcher.build_parser(stage, prog=f'sfmnet-{stage}')
    assert described(front_parser) == described(original)
    assert front_parser.format_help() == original.format_help()
    assert 'BasicSR' in front_parser.description and front_parser.epilog.startswith('examples:')


@pytest.mark.parametrize('stage, front', [('train', train_cli), ('test', test_cli)])
def test_the_launcher_front_takes_basicsr_options(stage, front):
    """BasicSR's parse_options options, with the plugin's ``--local-rank`` spelling (newer torchrun's); a test run
    is never resumed, so ``sfmnet-test`` has no ``--auto_resume``."""
    options = {string for action in front.build_parser()._actions for string in action.option_strings}
    basicsr = {string for action in basicsr_parser(stage)._actions for string in action.option_strings}
    assert options - basicsr == {'--local-rank'}
    assert basicsr - options == ({'--auto_resume'} if stage == 'test' else set())


# Flags of other programs that the library's messages name: pip's, torchrun's, pytorch-fid's.
OTHER_PROGRAMS_FLAGS = {'--force-reinstall', '--no-binary', '--no-deps', '--only-binary', '--nproc_per_node',
                        '--save-stats'}


def _console_script_flags():
    import importlib
    import pkgutil

    import sfmnet_cli
    from sfmnet_cli.dispatch import launcher_parser

    parsers = [launcher_parser(stage, stage) for stage in ('train', 'test')]
    for module in pkgutil.iter_modules(sfmnet_cli.__path__):
        front = importlib.import_module(f'sfmnet_cli.{module.name}')
        if hasattr(front, 'build_parser'):
            parsers.append(front.build_parser())
    return {flag for parser in parsers for action in parser._actions for flag in action.option_strings}


def test_every_flag_the_library_names_in_its_messages_exists():
    """A message that tells the user to pass ``--x`` names a flag some command has (the LPIPS message once said
    "set 'weights_path' in the options" to sfmnet-benchmark users, who have ``--lpips-weights``)."""
    import ast
    import pathlib
    import re

    library = pathlib.Path(launcher.__file__).parents[1]
    flags = _console_script_flags() | OTHER_PROGRAMS_FLAGS
    unknown = {}
    for source in library.rglob('*.py'):
        for node in ast.walk(ast.parse(source.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in re.findall(r'(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9](?![\w-])', node.value):
                    if flag not in flags and flag != '--flag':  # '--flag': a docstring's placeholder
                        unknown.setdefault(flag, []).append(str(source.relative_to(library)))
    assert not unknown, unknown
