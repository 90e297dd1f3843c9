"""Train a network with BasicSR's trainer and the plugin's components (SFMNet, PairedFaceDataset,
FrequencyLoss, face metrics, ...).

The option file (-opt) is a BasicSR YAML file, with optional `_base_` inheritance: name, model_type,
scale, datasets (train, val), network_g, path, train, val, logger. See options/train_SFMNet_x8.yml
and options/_base_/sfmnet_celeba_x8.yml. Before anything is created, the datasets and pretrained
files it names are checked; a missing one is reported with the command that prepares it.

Outputs: experiments/<name>/ (models, training_states, the log with the full options and network,
the merged option file) and tb_logger/<name>/, under the repository root ($SFMNET_ROOT_PATH).
"""
import sys

from sfmnet_cli.arguments import launcher_parser
from sfmnet_cli.dispatch import run_launcher

EPILOG = """examples:
  sfmnet-train -opt options/train_SFMNet_x8.yml
  sfmnet-train -opt options/train_SFMNet_x8.yml --auto_resume          # continue from the newest state
  sfmnet-train -opt options/demo_SFMNet_x8.yml --force_yml train:total_iter=100
  python basicsr/train.py -opt options/train_SFMNet_x8.yml              # the same, BasicSR's usual command
  torchrun --nproc_per_node=4 -m sfmnet_plugin.train -opt options/train_SFMNet_x8.yml --launcher pytorch"""


def build_parser():
    return launcher_parser('train', 'sfmnet-train', (__doc__ or '').rstrip(), EPILOG)


def main(argv: list[str] | None = None) -> int | None:
    """Check the command line (``--help``, usage errors) without torch, then hand it unchanged to the launcher,
    :func:`sfmnet_plugin.launch.cli.train_pipeline`."""
    build_parser().parse_args(argv)
    return run_launcher('train', argv)


if __name__ == '__main__':
    sys.exit(main())
