"""The console scripts' command lines: every ``sfmnet-*`` command starts here, without importing torch.

Each console script is a module of this package (``sfmnet_cli.infer`` is ``sfmnet-infer``) holding the tool's
manual (its docstring, the ``--help`` description), ``build_parser()`` and ``main(argv=None)``. ``main`` parses
and checks the command line with the standard library alone, so ``--help``, a usage error or a wrong value is
answered before torch and basicsr are imported; then :func:`sfmnet_cli.dispatch.run_tool` imports the tool's body,
``sfmnet_plugin.tools.<tool>``, and runs it. What the tools' command lines share is in
:mod:`sfmnet_cli.arguments`. The library (``sfmnet_plugin``) never imports this package, and this package imports
nothing of the library until a command runs (``tests/cli/test_cli_startup.py``).
"""
