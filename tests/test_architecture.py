"""The layout's rules hold: the import contracts in ``.importlinter`` pass, a broken rule fails them, and they are
the README's Architecture table; no loose top-level modules; one name per module; no long library files without a
stated reason.

The contracts (import-linter, run as ``lint-imports``) count imports inside functions as much as those at the top
of a module: each folder imports only what its row of the README's table allows (``data`` never imports ``prep``,
``archs`` import nothing above them, ...); the library never imports ``sfmnet_plugin.tools`` nor the command lines
(``sfmnet_cli``, a second root package); no import cycles, neither between subpackages nor between the modules of
one; the console scripts never import each other, neither their bodies (``sfmnet_plugin.tools``) nor their command
lines (``sfmnet_cli``). Every console script is a command line in ``sfmnet_cli`` with a body in
``sfmnet_plugin.tools`` (or the launcher); ``tests/cli/test_cli_startup.py`` checks that a command line imports
nothing heavy before it runs.
"""
import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'sfmnet_plugin'
CLI = REPO / 'sfmnet_cli'
TOP_LEVEL_MODULES = {'__init__.py', 'version.py', 'train.py', 'test.py'}
MAX_LIBRARY_LINES = 400
LENGTH_REASON = 'long because'  # the phrase a long module's docstring uses to give its reason


def lint_imports(root):
    """``lint-imports`` on the package under ``root`` with the repository's contracts; returns the process result."""
    environment = {**os.environ, 'PYTHONPATH': str(root)}
    return subprocess.run([sys.executable, '-c', 'import sys; from importlinter.cli import lint_imports_command; '
                           'sys.exit(lint_imports_command())', '--config', str(root / '.importlinter'),
                           '--no-cache'], cwd=root, env=environment, capture_output=True, text=True, timeout=300)


def broken_contracts(output):
    """The names of the broken contracts in lint-imports' summary (names may wrap over lines), joined by ' | '."""
    summary = ' '.join(output.split('dependencies.', 1)[-1].split('Contracts:', 1)[0].split()).strip('- ')
    return ' | '.join(name for name, status in re.findall(r'(.+?) (KEPT|BROKEN)', summary) if status == 'BROKEN')


def test_the_import_contracts_pass():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '0 broken' in result.stdout


@pytest.mark.parametrize('module, added, contract', [
    ('data/image_io.py', 'import sfmnet_plugin.tools.common', 'never imports the console scripts'),
    ('data/lmdb_reader.py', 'from sfmnet_plugin.prep import output_folders', 'data/ may import utils/'),
    ('archs/spectral.py', 'from sfmnet_plugin.losses import frequency_loss', 'archs/ may import utils/'),
    ('metrics/fid.py', 'from sfmnet_plugin.models import reports', 'metrics/ may import data/'),
    ('utils/atomic.py', 'from sfmnet_plugin.data import image_io', 'No import cycles'),
    ('tools/export.py', 'from sfmnet_plugin.tools.infer import read_image', 'never import each other'),
    ('utils/atomic.py', 'from sfmnet_cli import arguments', 'sfmnet_plugin never imports the command lines'),
    ('../sfmnet_cli/export.py', 'from sfmnet_cli.infer import PRECISIONS', 'Command lines never import each other'),
    ('../sfmnet_cli/infer.py', 'from sfmnet_plugin.inference import FaceRestorer', 'sfmnet_cli/ may import tools/'),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, added, contract):
    """Even inside a function, where it would not run at import time (the last case closes a utils <-> data cycle:
    data/image_io.py imports utils/atomic.py)."""
    for package in (PACKAGE, CLI):
        shutil.copytree(package, tmp_path / package.name, ignore=shutil.ignore_patterns('__pycache__'))
    with open(tmp_path / 'sfmnet_plugin' / module, 'a', encoding='utf-8') as f:
        f.write(f'\n\ndef _added():\n    {added}  # noqa\n')
    shutil.copy(REPO / '.importlinter', tmp_path / '.importlinter')
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert contract in broken_contracts(result.stdout), result.stdout  # others may break too (a cycle, indirectly)


ANYTHING = 'anything in the library'


def readme_architecture(readme_text):
    """The README's Architecture table: ``{subpackage or top-level module: allowed subpackages, or ANYTHING}``.

    A row's first column names its folders (```launch/```) and modules (```train.py```); its "may import" column
    names the allowed folders the same way (other backquoted text, a file say, is not a folder), or says
    ``anything in the library``.
    """
    table = readme_text.split('| folder (`sfmnet_plugin/`) | concern | may import (from the plugin) |', 1)[1]
    rows = {}
    for line in table.split('\n\n', 1)[0].strip().splitlines()[1:]:
        folders, _, allowed = (cell.strip() for cell in line.strip('|').split(' | '))
        may = ANYTHING if allowed == ANYTHING else frozenset(re.findall(r'`(\w+)/`', allowed))
        for name in re.findall(r'`(\w+)(?:/|\.py)`', folders):
            rows[name] = may
    return rows


def import_contracts(config_text):
    """``.importlinter``'s forbidden contracts: ``{contract id: (source modules, forbidden modules, indirect?)}``,
    module names without the ``sfmnet_plugin.`` prefix."""
    config = configparser.ConfigParser()
    config.read_string(config_text)
    contracts = {}
    for section in config.sections():
        if section.startswith('importlinter:contract:') and config[section]['type'] == 'forbidden':
            names = {key: frozenset(name.removeprefix('sfmnet_plugin.') for name in config[section][key].split())
                     for key in ('source_modules', 'forbidden_modules')}
            indirect = config[section].getboolean('allow_indirect_imports', fallback=False)
            contracts[section.removeprefix('importlinter:contract:')] = (
                names['source_modules'], names['forbidden_modules'], indirect)
    return contracts


def table_contract_problems(readme_text, config_text, subpackages):
    """Where the README's table and ``.importlinter`` disagree, one line each (empty: they agree)."""
    rows, contracts = readme_architecture(readme_text), import_contracts(config_text)
    problems = [f'{name}/ has no row in the README table' for name in sorted(subpackages - set(rows))]
    row_contracts = {id_: contract for id_, contract in contracts.items() if id_.endswith('-may-import')}
    by_sources = {sources: (id_, forbidden, indirect) for id_, (sources, forbidden, indirect) in row_contracts.items()}
    seen = set()
    for name, may in sorted(rows.items()):
        if may == ANYTHING:
            library = contracts['library-never-imports-tools'][0]
            if name != 'tools' and name not in library:
                problems.append(f'{name}: the README allows anything in the library, but the contract that keeps '
                                f'the library off tools/ does not list it')
            continue
        sources = next((s for s in by_sources if name in s), None)
        if sources is None:
            problems.append(f'{name}/: no <folder>-may-import contract in .importlinter for its README row')
            continue
        id_, forbidden, indirect = by_sources[sources]
        seen.add(id_)
        expected = frozenset(subpackages - may - sources)
        if forbidden - expected:
            problems.append(f'{id_} forbids {sorted(forbidden - expected)}, which the README row of {name}/ allows')
        if expected - forbidden:
            problems.append(f'{id_} does not forbid {sorted(expected - forbidden)}, which the README row of {name}/ '
                            'does not allow')
        if not indirect:
            problems.append(f'{id_}: the README says what a folder imports itself: allow_indirect_imports = True')
    problems += [f'{id_}: no README row names {sorted(sources)}' for id_, (sources, _, _) in row_contracts.items()
                 if id_ not in seen]
    return problems


def subpackages_of(package):
    return {path.parent.name for path in package.glob('*/__init__.py')}


def test_the_readme_architecture_table_is_the_import_contracts():
    problems = table_contract_problems((REPO / 'README.md').read_text(encoding='utf-8'),
                                       (REPO / '.importlinter').read_text(encoding='utf-8'), subpackages_of(PACKAGE))
    assert not problems, '\n'.join(problems)


def test_a_table_row_that_differs_from_its_contract_is_reported():
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    config = (REPO / '.importlinter').read_text(encoding='utf-8')
    data_row = '| `utils/` |\n| `faces/` |'
    assert data_row in readme
    loosened = readme.replace(data_row, '| `utils/`, `prep/` |\n| `faces/` |')  # data/ may now import prep/
    problems = table_contract_problems(loosened, config, subpackages_of(PACKAGE))
    assert problems == ["data-may-import forbids ['prep'], which the README row of data/ allows"]
    missing_row = readme.replace(readme[readme.index('| `faces/` |'):readme.index('| `archs/` |')], '')
    assert 'faces/ has no row in the README table' in table_contract_problems(missing_row, config,
                                                                            subpackages_of(PACKAGE))


def test_no_module_imports_one_that_imports_it_back():
    """Module by module, also a package's ``__init__`` and its own submodules (which acyclic_siblings leaves out);
    imports inside functions count (grimp, import-linter's graph, reads every import statement)."""
    import grimp

    graph = grimp.build_graph('sfmnet_plugin', 'sfmnet_cli', cache_dir=None)
    cycles = sorted(f'{module} -> {imported}' for module in graph.modules
                    for imported in graph.find_modules_directly_imported_by(module)
                    if graph.chain_exists(importer=imported, imported=module))
    assert not cycles, cycles


def test_no_loose_modules_at_the_top_of_the_package():
    """Everything but the package face, the version and the two launchers lives in a folder of one concern."""
    loose = {path.name for path in PACKAGE.glob('*.py')} - TOP_LEVEL_MODULES
    assert not loose, f'move {sorted(loose)} into the folder of their concern'


def test_no_two_modules_share_a_file_name():
    """A module's name says what it is: two modules of one name (``pipeline.py`` in two folders, say) would play one
    role, so they would be one module; only the packages' ``__init__.py`` repeat."""
    names = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        names.setdefault(path.name, []).append(str(path.relative_to(PACKAGE)))
    shared = {name: paths for name, paths in names.items() if len(paths) > 1 and name != '__init__.py'}
    assert not shared, shared


def test_long_library_modules_state_why():
    """A library file over ~400 lines holds too much unless its docstring says why it is one file."""
    too_long = []
    for path in sorted(PACKAGE.rglob('*.py')):
        text = path.read_text(encoding='utf-8')
        if text.count('\n') > MAX_LIBRARY_LINES and LENGTH_REASON not in (ast.get_docstring(ast.parse(text)) or ''):
            too_long.append(f'{path.relative_to(REPO)} ({text.count(chr(10))} lines)')
    assert not too_long, f'split these, or say in the docstring why each is "{LENGTH_REASON}": {too_long}'


def test_every_console_script_is_a_command_line_with_a_body():
    """setup.py's console scripts are ``sfmnet_cli.<tool>:main`` (the library holds no command lines), and each
    runs a body: ``run(args)`` in ``sfmnet_plugin.tools.<tool>``, or the launcher for ``sfmnet-train``/``-test``;
    every body has its command line."""
    import importlib

    scripts = re.findall(r"'([\w-]+) = ([\w.]+):(\w+)'", (REPO / 'setup.py').read_text(encoding='utf-8'))
    assert {'sfmnet-prepare-celeba', 'sfmnet-folder-to-lmdb', 'sfmnet-verify-lmdb'} <= {name for name, _, _ in scripts}
    tools = set()
    for name, module, function in scripts:
        assert module.startswith('sfmnet_cli.') and function == 'main', name
        assert callable(getattr(importlib.import_module(module), function)), name
        tool = module.removeprefix('sfmnet_cli.')
        assert name == f"sfmnet-{tool.replace('_', '-')}"
        if tool not in ('train', 'test'):
            assert callable(importlib.import_module(f'sfmnet_plugin.tools.{tool}').run), name
            tools.add(tool)
    bodies = {path.stem for path in (PACKAGE / 'tools').glob('*.py')} - {'__init__', 'common'}
    assert tools == bodies
    fronts = {path.stem for path in CLI.glob('*.py')} - {'__init__', 'arguments', 'dispatch'}
    assert fronts == tools | {'train', 'test'}


def test_the_independence_contracts_list_every_tool():
    """A new console script is covered by 'never import each other' only once .importlinter lists its body and its
    command line."""
    config = configparser.ConfigParser()
    config.read(REPO / '.importlinter', encoding='utf-8')
    for contract, package, shared in (('tools-never-import-each-other', PACKAGE / 'tools', ('__init__', 'common')),
                                      ('command-lines-never-import-each-other', CLI,
                                       ('__init__', 'arguments', 'dispatch'))):
        listed = set(config[f'importlinter:contract:{contract}']['modules'].split())
        prefix = 'sfmnet_plugin.tools' if package.name == 'tools' else 'sfmnet_cli'
        assert listed == {f'{prefix}.{path.stem}' for path in package.glob('*.py') if path.stem not in shared}
