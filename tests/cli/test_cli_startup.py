"""Every console script reads its command line before it imports the library: ``--help``, a usage error and a wrong
value are answered without torch, basicsr, OpenCV, NumPy or PIL (``sfmnet_cli`` is standard library only until a
command runs), and the command that runs still reaches its body.

Each check runs in a fresh interpreter (this one has imported everything) and lists, after the call, the modules of
:data:`HEAVY` in ``sys.modules``. The console scripts are read from ``setup.py``, so a new one is checked too.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a command line must not import: the library (it imports torch and basicsr) and the heavy libraries.
HEAVY = ('torch', 'basicsr', 'cv2', 'numpy', 'PIL', 'sfmnet_plugin')

# Call ``module:function(argv)`` and print its exit status and the heavy modules then loaded, as JSON on stderr's
# last line (the tool prints its help or error before).
PROBE = '''
import importlib, json, sys
module, function, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    status = getattr(importlib.import_module(module), function)(argv)
except SystemExit as exit:
    status = exit.code
heavy = sorted({name.split('.')[0] for name in sys.modules} & set(json.loads(sys.argv[4])))
print(json.dumps({'status': status, 'heavy': heavy}), file=sys.stderr)
'''


def console_scripts():
    """``[(name, module, function)]`` of setup.py's console scripts."""
    text = (REPO / 'setup.py').read_text(encoding='utf-8')
    scripts = re.findall(r"'([\w-]+) = ([\w.]+):(\w+)'", text)
    assert len(scripts) >= 14
    return scripts


SCRIPTS = console_scripts()


def probe(module, function, argv):
    """``(status, heavy modules loaded, stdout, stderr without the probe's line)`` of ``module.function(argv)`` in a
    fresh interpreter that has this checkout first on its path."""
    environment = {**os.environ, 'PYTHONPATH': str(REPO)}
    result = subprocess.run([sys.executable, '-c', PROBE, module, function, json.dumps(argv), json.dumps(HEAVY)],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=120)
    *stderr, last = result.stderr.splitlines() or ['']
    report = json.loads(last)
    return report['status'], report['heavy'], result.stdout, '\n'.join(stderr)


@pytest.mark.parametrize('name, module, function', SCRIPTS, ids=[name for name, _, _ in SCRIPTS])
def test_help_imports_nothing_heavy(name, module, function):
    status, heavy, stdout, stderr = probe(module, function, ['--help'])
    assert (status, heavy) == (0, []), stderr
    assert module.startswith('sfmnet_cli.')
    assert stdout.startswith('usage: ') and '--help' in stdout
    manual = sys.modules.get(module) or __import__(module, fromlist=['build_parser'])
    description = manual.build_parser().description
    assert description and ' '.join(description.split()[:8]) in ' '.join(stdout.split())  # the manual too


@pytest.mark.parametrize('name, module, function', SCRIPTS, ids=[name for name, _, _ in SCRIPTS])
def test_a_usage_error_exits_2_before_anything_heavy(name, module, function):
    status, heavy, _, stderr = probe(module, function, ['--no-such-option'])
    assert (status, heavy) == (2, [])
    assert stderr.startswith('usage: ') and ': error: ' in stderr  # the missing arguments or the unknown option


@pytest.mark.parametrize('module, argv, status, message', [
    ('sfmnet_cli.infer', [], 2, 'the following arguments are required: INPUT, --output, --checkpoint'),
    ('sfmnet_cli.train', [], 2, 'the following arguments are required: -opt'),
    ('sfmnet_cli.test', ['-opt', 'x.yml', '--auto_resume'], 2, 'unrecognized arguments: --auto_resume'),
    ('sfmnet_cli.infer', ['in', '--output', 'out', '--checkpoint', 'c.pth', '--batch-size', '0'], 1,
     '--batch-size, --size and --max-input-side must be positive'),
    ('sfmnet_cli.infer', ['in', '--output', 'out', '--checkpoint', 'c.pth', '--size', '200'], 1,
     '--size 200 is larger than --max-input-side 128'),
    ('sfmnet_cli.infer', ['in', '--output', 'out', '--checkpoint', 'c.pth', '--max-input-side', '100000'], 1,
     '--max-input-side 100000: expected at most 1024'),
    ('sfmnet_cli.restore', ['in', '--output', 'out', '--checkpoint', 'c.pth', '--upscale', '17'], 1,
     '--upscale 17: expected 1 to 16'),
    ('sfmnet_cli.export', ['--checkpoint', 'c.pth', '--lr-size', '0'], 1, '--lr-size takes one or two positive sizes'),
    ('sfmnet_cli.benchmark', ['--gt', 'hr', '--output', 'out', '--bicubic', '--scale', '0'], 2,
     '--scale must be positive'),
    ('sfmnet_cli.benchmark', ['--gt', 'hr', '--output', 'out', '--network', 'A'], 2,
     '--network takes NAME CHECKPOINT [OPTION_FILE]'),
    ('sfmnet_cli.demo', ['--networks', 'NoSuchNet'], 2, "argument --networks: invalid choice: 'NoSuchNet'"),
    ('sfmnet_cli.prepare_celeba', ['--root', 'r', '--protocol', 'other'], 2, "invalid choice: 'other'"),
    ('sfmnet_cli.prepare_ffhq', ['--root', 'r', '--scales', '0'], 2, 'expected a positive integer, got 0'),
    ('sfmnet_cli.prepare_helen', ['--downsampler', 'nearest'], 2, "invalid choice: 'nearest'"),
    ('sfmnet_cli.folder_to_lmdb', ['--sfmnet-layout', 'in', 'out', '--landmarks', '68'], 2,
     'error: --landmarks: with --sfmnet-layout, convert HR/ alone with --landmarks 68'),
    ('sfmnet_cli.verify_lmdb', [], 2, 'give at least one LMDB or split folder'),
    ('sfmnet_cli.verify_lmdb', ['--pair', 'hr', 'lr', 'x8'], 2, 'SCALE must be a positive integer'),
    ('sfmnet_cli.convert', ['in.pth', 'out.pth', '--format', 'npz'], 2, "invalid choice: 'npz'"),
    ('sfmnet_cli.convert_official', ['in.pth'], 2, 'the following arguments are required: output'),
    # an output that exists (here a file of the checkout, never written: the input is no checkpoint either)
    ('sfmnet_cli.convert', ['setup.py', 'README.md'], 1, 'README.md already exists; choose another output path'),
    ('sfmnet_cli.convert_official', ['setup.py', 'README.md'], 1, 'README.md already exists; choose another'),
    ('sfmnet_cli.export', ['--checkpoint', 'setup.py', '--lr-size', '16', '--output', 'README.md'], 1,
     'README.md already exists; choose another output path or pass --overwrite'),
    ('sfmnet_cli.demo', ['--lpips-weights', 'no_alexnet.pth'], 2, 'argument --lpips-weights: no file at no_alexnet'),
])
def test_wrong_arguments_are_refused_before_anything_heavy(module, argv, status, message):
    """Missing arguments, wrong choices and values the command line can judge alone: its status and one message."""
    got_status, heavy, _, stderr = probe(module, 'main', argv)
    assert (got_status, heavy) == (status, []), stderr
    assert message in stderr


def test_importing_every_command_line_module_loads_nothing_heavy():
    modules = sorted(f'sfmnet_cli.{path.stem}' for path in (REPO / 'sfmnet_cli').glob('*.py'))
    assert {'sfmnet_cli.arguments', 'sfmnet_cli.dispatch', 'sfmnet_cli.infer', 'sfmnet_cli.train'} <= set(modules)
    statement = (f'import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; '
                 f'print(sorted({{n.split(".")[0] for n in sys.modules}} & set({HEAVY!r})))')
    result = subprocess.run([sys.executable, '-c', statement], cwd=REPO, env={**os.environ, 'PYTHONPATH': str(REPO)},
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == '[]'


@pytest.mark.parametrize('module', ['sfmnet_cli.infer', 'sfmnet_cli.verify_lmdb', 'sfmnet_cli.train'])
def test_python_dash_m_runs_the_command_line(module):
    """``python -m sfmnet_cli.<tool>`` is the console script (the demo's ``infer_<network>.sh`` runs it so)."""
    result = subprocess.run([sys.executable, '-m', module, '--help'], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, 'PYTHONPATH': str(REPO)}, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith('usage: '), result.stderr


def test_a_command_that_runs_reaches_its_body_through_the_error_boundary(tmp_path):
    """Past the command line the tool's body runs, inside the plugin's error boundary: a missing checkpoint is one
    ``<prog>: error:`` line and status 1, and the library was imported for it."""
    status, heavy, _, stderr = probe('sfmnet_cli.convert', 'main', [str(tmp_path / 'missing.pth'),
                                                                    str(tmp_path / 'out.pth')])
    assert status == 1 and {'torch', 'sfmnet_plugin'} <= set(heavy)
    assert stderr.startswith('sfmnet-convert: ') and 'missing.pth' in stderr and len(stderr.splitlines()) == 1
