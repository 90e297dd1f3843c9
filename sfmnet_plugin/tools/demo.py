"""The body of ``sfmnet-demo`` (its command line and manual: :mod:`sfmnet_cli.demo`):
:func:`sfmnet_plugin.demo.end_to_end.run_demo` with the command line's choices."""
import argparse

from sfmnet_plugin.demo.end_to_end import run_demo

# a bad --threads or --iterations, an output the guard refuses: one line, as the plugin's error boundary prints it
USER_ERRORS = (ValueError,)


def run(args: argparse.Namespace) -> None:
    run_demo(args.networks, args.output, args.preset, args.iterations, args.threads, args.cache_dir, args.jitter,
             args.seed, args.lpips_weights)

