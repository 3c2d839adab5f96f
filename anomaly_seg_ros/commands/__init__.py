"""Subcommands of ``anomaly_seg``: argument parsing only; each ``run`` calls library code.

Modules import heavy dependencies (torch, rclpy) inside ``run``, so ``--help`` stays fast and
does not need them.
"""
