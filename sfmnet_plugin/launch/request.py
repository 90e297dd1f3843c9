"""One launcher command line, parsed once, with the options it names read once.

``sfmnet-train`` / ``sfmnet-test`` (and every script that runs them) turn their command line into a
:class:`RunRequest` (:func:`sfmnet_plugin.launch.cli.parse_command_line`). The request also holds the
options exactly as the run will use them: the ``-opt`` file read with a safe loader, its ``_base_``
files merged and the ``--force_yml`` entries applied. The key check
(:func:`sfmnet_plugin.config.option_schema.validate_options`), the pre-flight
(:func:`sfmnet_plugin.launch.preflight.check_run`) and the run session
(:func:`sfmnet_plugin.launch.session.run_session`) all receive this one object, so they can never
disagree about what runs. BasicSR's pipeline parses ``sys.argv`` itself; it gets
:meth:`RunRequest.basicsr_argv`, built from the request (:mod:`sfmnet_plugin.launch.pipeline`).
"""
import os
from dataclasses import dataclass, field

from sfmnet_plugin.config.option_files import (
    BASE_KEY,
    apply_overrides,
    default_root_path,
    merge_bases,
    read_option_file,
)
from sfmnet_plugin.launch.checkpoint_network import with_checkpoint_network


@dataclass(frozen=True)
class RunRequest:
    """What one ``stage`` ('train' | 'test') run was asked to do.

    ``options`` are the merged options (read-only by convention: the checks only read them, and BasicSR
    reads its own copy from the file the launcher writes). ``program`` is the command's ``argv[0]``,
    which BasicSR records in the option file it saves with the run.
    """

    stage: str
    option_path: str
    options: dict = field(repr=False, compare=False)
    overrides: tuple = ()
    uses_base: bool = False
    launcher: str = 'none'
    auto_resume: bool = False
    debug: bool = False
    local_rank: int = 0
    root_path: str = ''
    program: str = ''
    network_from_checkpoint: bool = False  # network_g came from path.pretrain_network_g's checkpoint

    @classmethod
    def read(cls, stage, args, program, root_path=None):
        """The request of the parsed arguments ``args`` (an ``argparse`` namespace of the launcher's parser).

        Reads the option file and its bases; raises ``FileNotFoundError`` or
        :class:`~sfmnet_plugin.config.option_files.OptionFileError` (unsafe or invalid YAML, a bad ``_base_``
        or ``--force_yml`` entry), each naming the file.
        """
        overrides = tuple(args.force_yml or ())
        content = read_option_file(args.opt)
        options = apply_overrides(merge_bases(args.opt, content), overrides)
        options, network_from_checkpoint = with_checkpoint_network(options)
        return cls(stage=stage, option_path=args.opt, options=options, overrides=overrides,
                   network_from_checkpoint=network_from_checkpoint,
                   uses_base=BASE_KEY in content, launcher=args.launcher,
                   auto_resume=getattr(args, 'auto_resume', False), debug=args.debug, local_rank=args.local_rank,
                   root_path=root_path or default_root_path(), program=program)

    @property
    def writes_merged_file(self):
        """Whether BasicSR must read a merged copy instead of the file itself (``_base_``, ``--force_yml``, or
        ``network_g`` taken from the pretrained checkpoint)."""
        return self.uses_base or bool(self.overrides) or self.network_from_checkpoint

    @property
    def world_size(self):
        """Processes the run will have: torchrun's ``WORLD_SIZE`` under a distributed launcher, else 1."""
        if self.launcher == 'none':
            return 1
        value = os.environ.get('WORLD_SIZE', '1')
        return int(value) if value.isdigit() and int(value) > 0 else 1

    def basicsr_argv(self, option_file):
        """The command line BasicSR's ``parse_options`` reads, with ``option_file`` as ``-opt``.

        ``--force_yml`` is never passed on (its entries are in the options already; BasicSR would apply them
        with ``exec``), and the local rank is spelt ``--local_rank``, as BasicSR's parser expects.
        """
        argv = [self.program, '-opt', option_file]
        if self.launcher != 'none':
            argv += ['--launcher', self.launcher]
        if self.auto_resume:
            argv.append('--auto_resume')
        if self.debug:
            argv.append('--debug')
        if self.local_rank:
            argv += ['--local_rank', str(self.local_rank)]
        return argv
