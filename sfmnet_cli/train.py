"""``sfmnet-train``: train a network with BasicSR's trainer and the plugin's components. Its manual and parser
are the launcher's (:mod:`sfmnet_plugin.launch.arguments`), read before torch is imported."""
import sys

from sfmnet_cli.dispatch import launcher_parser, run_launcher


def build_parser():
    return launcher_parser('train', 'sfmnet-train')


def main(argv: list[str] | None = None) -> int | None:
    """Check the command line (``--help``, usage errors) without torch, then hand it unchanged to the launcher,
    :func:`sfmnet_plugin.launch.cli.train_pipeline`."""
    build_parser().parse_args(argv)
    return run_launcher('train', argv)


if __name__ == '__main__':
    sys.exit(main())
