"""PLACEHOLDER: `anomaly_seg data` is being written; this file is replaced by its owner."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('data'.replace('_', '-'), help='(not yet available)')
    parser.set_defaults(run=lambda args: parser.error('not yet available'))
