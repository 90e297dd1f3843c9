"""The package's type hints hold: mypy (configured in ``mypy.ini``) finds no error, and every public function has
them: what each subpackage's ``__init__`` exports (functions, and the public methods of exported classes), every
console script's ``main`` (``sfmnet_cli``) and its body's ``run`` (``sfmnet_plugin.tools``), the command lines'
shared functions and the two launchers' ``main``."""
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'sfmnet_plugin'
CLI = REPO / 'sfmnet_cli'


def test_mypy_finds_no_error():
    result = subprocess.run([sys.executable, '-m', 'mypy', '--config-file', str(REPO / 'mypy.ini')], cwd=REPO,
                            env={**os.environ, 'PYTHONPATH': str(REPO)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def public_api():
    """``{qualified name: function}`` of the package's public functions (see the module docstring)."""
    functions = {}
    for init in sorted(PACKAGE.glob('*/__init__.py')):
        package = importlib.import_module(f'sfmnet_plugin.{init.parent.name}')
        names = getattr(package, '__all__', None) or [
            name for name, value in vars(package).items() if not name.startswith('_')
            and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__.startswith('sfmnet_plugin.')]
        for name in names:
            value = getattr(package, name)
            if inspect.isfunction(value):
                functions[f'{package.__name__}.{name}'] = value
            elif inspect.isclass(value) and value.__module__.startswith('sfmnet_plugin.'):
                for method_name, method in vars(value).items():
                    if isinstance(method, (classmethod, staticmethod)):
                        method = method.__func__
                    elif isinstance(method, property):
                        method = method.fget
                    if inspect.isfunction(method) and (not method_name.startswith('_') or method_name == '__init__'):
                        functions[f'{package.__name__}.{name}.{method_name}'] = method
    mains = [f'sfmnet_cli.{path.stem}' for path in sorted(CLI.glob('*.py'))
             if path.stem not in ('__init__', 'arguments', 'dispatch')] + ['sfmnet_plugin.train', 'sfmnet_plugin.test']
    for module in mains:
        functions[f'{module}.main'] = importlib.import_module(module).main
    for path in sorted((PACKAGE / 'tools').glob('*.py')):
        if path.stem not in ('__init__', 'common'):
            functions[f'sfmnet_plugin.tools.{path.stem}.run'] = importlib.import_module(
                f'sfmnet_plugin.tools.{path.stem}').run
    for module in ('sfmnet_cli.arguments', 'sfmnet_cli.dispatch'):
        functions.update({f'{module}.{name}': value for name, value in vars(importlib.import_module(module)).items()
                          if inspect.isfunction(value) and value.__module__ == module and not name.startswith('_')})
    return functions


def test_every_public_function_has_type_hints():
    unhinted = []
    for name, function in public_api().items():
        signature = inspect.signature(function)
        missing = [parameter.name for parameter in signature.parameters.values()
                   if parameter.name not in ('self', 'cls') and parameter.annotation is inspect.Parameter.empty]
        if signature.return_annotation is inspect.Signature.empty and function.__name__ != '__init__':
            missing.append('return')
        if missing:
            unhinted.append(f'{name}: {", ".join(missing)}')
    assert not unhinted, unhinted


def test_the_public_api_is_found():
    names = public_api()
    assert {'sfmnet_plugin.inference.FaceRestorer.restore', 'sfmnet_plugin.benchmark.run_benchmark',
            'sfmnet_plugin.checkpoints.convert_official_checkpoint', 'sfmnet_cli.infer.main',
            'sfmnet_cli.arguments.add_network_arguments', 'sfmnet_cli.dispatch.run_tool',
            'sfmnet_plugin.tools.infer.run', 'sfmnet_plugin.train.main'} <= set(names)
