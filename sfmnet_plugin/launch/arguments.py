"""The command line of ``sfmnet-train`` and ``sfmnet-test``: BasicSR's ``parse_options`` arguments, documented.

The standard library only: the launcher (:mod:`sfmnet_plugin.launch.cli`) imports it, and the console scripts'
fronts (``sfmnet_cli/train.py``, ``test.py``) run it from its file before torch is imported, so ``--help`` and a
usage error are answered at once by the one parser both use.
"""
import argparse

DESCRIPTIONS = {
    'train': '''Train a network with BasicSR's trainer and the plugin's components (SFMNet, PairedFaceDataset,
FrequencyLoss, face metrics, ...).

The option file (-opt) is a BasicSR YAML file, with optional `_base_` inheritance: name, model_type,
scale, datasets (train, val), network_g, path, train, val, logger. See options/train_SFMNet_x8.yml
and options/_base_/sfmnet_celeba_x8.yml. Before anything is created, the datasets and pretrained
files it names are checked; a missing one is reported with the command that prepares it.

Outputs: experiments/<name>/ (models, training_states, the log with the full options and network,
the merged option file) and tb_logger/<name>/, under the repository root ($SFMNET_ROOT_PATH).''',
    'test': '''Test a trained network with BasicSR's tester: metrics per image and on average, with the
bicubic baseline, SR images, a Markdown summary and a contact sheet.

The option file (-opt) is a BasicSR YAML file, with optional `_base_` inheritance, whose datasets are
the test sets and whose path.pretrain_network_g is the network to test. See options/test_SFMNet_x8.yml.
Before anything is created, the test sets, the network file and metric weights are checked.

Outputs: results/<name>/ (visualization/, <set>_metrics.csv, <set>_summary.md,
<set>_contact_sheet.png and the log), under the repository root ($SFMNET_ROOT_PATH).''',
}

EXAMPLES = {
    'train': '''examples:
  sfmnet-train -opt options/train_SFMNet_x8.yml
  sfmnet-train -opt options/train_SFMNet_x8.yml --auto_resume          # continue from the newest state
  sfmnet-train -opt options/demo_SFMNet_x8.yml --force_yml train:total_iter=100
  python basicsr/train.py -opt options/train_SFMNet_x8.yml              # the same, BasicSR's usual command
  torchrun --nproc_per_node=4 -m sfmnet_plugin.train -opt options/train_SFMNet_x8.yml --launcher pytorch''',
    'test': '''examples:
  sfmnet-test -opt options/test_SFMNet_x8.yml
  sfmnet-test -opt options/test_SFMNet_x8.yml \\
      --force_yml path:pretrain_network_g=experiments/pretrained_models/SFMNet_x8.pth   # converted official weights
  python basicsr/test.py -opt options/test_SFMNet_x8.yml               # the same, BasicSR's usual command''',
}


def build_parser(stage, prog=None):
    """The argument parser of the ``stage`` ('train' | 'test') launcher: BasicSR's arguments, documented."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTIONS[stage],
                                     epilog=EXAMPLES[stage], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, metavar='OPTIONS.yml', help='BasicSR option file (YAML)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher: pytorch under torchrun (GPUs: nccl, CPUs: gloo) '
                             '(default: %(default)s)')
    if stage == 'train':
        parser.add_argument('--auto_resume', action='store_true',
                            help="continue from the newest state in experiments/<name>/training_states/")
    parser.add_argument('--debug', action='store_true',
                        help='BasicSR debug mode: name prefixed with debug_, frequent logs, no TensorBoard')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--force_yml', nargs='+', action='extend', metavar='KEY:KEY=VALUE',
                        help='override existing options, e.g. train:total_iter=1000 '
                             'datasets:train:batch_size_per_gpu=4')
    return parser
