"""``anomaly_seg``: one command-line tool for all offline work.

Each subcommand lives in :mod:`.commands` and only parses arguments and calls library code.
Expected failures (:class:`~.errors.AnomalySegError`) print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import AnomalySegError

__all__ = ['build_parser', 'main']

# Subcommand modules under anomaly_seg_ros.commands; each defines register(subparsers).
COMMAND_MODULES = ('data', 'train', 'tune_ensemble', 'export', 'evaluate', 'bag', 'bench', 'demo')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='anomaly_seg',
        description='Pixel-wise anomaly segmentation for driving scenes (Di Biase et al., CVPR 2021): '
                    'make data, train, tune the ensemble, export ONNX/TensorRT, evaluate, work with '
                    'rosbags, benchmark, and run the demo.',
    )
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f'.commands.{module_name}', __package__).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except AnomalySegError as exc:
        print(f'anomaly_seg {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'anomaly_seg {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
