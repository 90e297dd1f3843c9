"""Test a trained network with BasicSR's tester: metrics per image and on average, with the
bicubic baseline, SR images, a Markdown summary and a contact sheet.

The option file (-opt) is a BasicSR YAML file, with optional `_base_` inheritance, whose datasets are
the test sets and whose path.pretrain_network_g is the network to test. See options/test_SFMNet_x8.yml.
Before anything is created, the test sets, the network file and metric weights are checked.

Outputs: results/<name>/ (visualization/, <set>_metrics.csv, <set>_summary.md,
<set>_contact_sheet.png and the log), under the repository root ($SFMNET_ROOT_PATH).
"""
import sys

from sfmnet_cli.arguments import launcher_parser
from sfmnet_cli.dispatch import run_launcher

EPILOG = """examples:
  sfmnet-test -opt options/test_SFMNet_x8.yml
  sfmnet-test -opt options/test_SFMNet_x8.yml \\
      --force_yml path:pretrain_network_g=experiments/pretrained_models/SFMNet_x8.pth   # converted official weights
  python basicsr/test.py -opt options/test_SFMNet_x8.yml               # the same, BasicSR's usual command"""


def build_parser():
    return launcher_parser('test', 'sfmnet-test', (__doc__ or '').rstrip(), EPILOG)


def main(argv: list[str] | None = None) -> int | None:
    """Check the command line (``--help``, usage errors) without torch, then hand it unchanged to the launcher,
    :func:`sfmnet_plugin.launch.cli.test_pipeline`."""
    build_parser().parse_args(argv)
    return run_launcher('test', argv)


if __name__ == '__main__':
    sys.exit(main())
