"""``anomaly_seg_node`` as a child process on a ROS domain of its own, without importing rclpy.

Used by ``anomaly_seg demo``, ``anomaly_seg bench --node`` / ``--soak`` and the node tests:
:func:`node_command` is the node's command line as the launch file starts it, :func:`ros_environment`
the variables that put the node and the caller's own participant on one domain (localhost only, with
the Fast DDS profile for large images), :func:`environment` sets them in this process for a while,
and :class:`NodeProcess` runs the node with its output in a log file and stops it with a signal.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import AnomalySegError
from ..resources import default_config_file, share_directories

__all__ = [
    'DDS_PROFILE_VARIABLES',
    'DISCOVERY_VARIABLES',
    'NODE_NAME',
    'NODE_PROGRAM',
    'PROFILE_FILE_NAME',
    'QOS_FROM_XML_VARIABLES',
    'NodeProcess',
    'dds_profile_environment',
    'dds_profile_in_use',
    'dds_summary',
    'environment',
    'free_domain_id',
    'node_command',
    'ros_environment',
]

NODE_NAME = 'anomaly_seg'
NODE_PROGRAM = (sys.executable, '-m', 'anomaly_seg_ros.ros.node')
#: localhost-only discovery: ROS_LOCALHOST_ONLY (Humble, Iron), ROS_AUTOMATIC_DISCOVERY_RANGE (Jazzy and later)
DISCOVERY_VARIABLES = {'ROS_LOCALHOST_ONLY': '1', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
#: where Fast DDS looks for a profile file: FASTDDS_... (Fast DDS 3), FASTRTPS_... (Fast DDS 2)
DDS_PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
_FAST_DDS_2_DISTROS = ('humble', 'iron', 'jazzy')
PROFILE_FILE_NAME = 'fastdds_large_images.xml'
#: rmw_fastrtps applies a profile's history memory policy and publish mode only with this variable set; the
#: shipped profile's DYNAMIC history memory frees a large frame's samples once newer ones replace them.
QOS_FROM_XML_VARIABLES = {'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}


def node_command(input_topic: str | None = None, parameters: Iterable[str] = (), *,
                 params_file: str | Path | None = None, program: Sequence[str] = NODE_PROGRAM) -> list[str]:
    """``<program> --ros-args -r __node:=anomaly_seg [-r image:=<input_topic>] --params-file <file> -p ...``.

    ``parameters``: ``'name:=value'`` strings; ``params_file`` defaults to the shipped
    config/anomaly_seg.yaml.
    """
    command = [*program, '--ros-args', '-r', f'__node:={NODE_NAME}']
    if input_topic:
        command += ['-r', f'image:={input_topic}']
    command += ['--params-file', str(params_file or default_config_file())]
    for parameter in parameters:
        command += ['-p', parameter]
    return command


def free_domain_id() -> int:
    """A ROS domain id unlikely to meet other sessions' (derived from this process id, 3..99)."""
    return os.getpid() % 97 + 3


def dds_profile_environment() -> dict[str, str]:
    """The Fast DDS profile variable for large images (config/fastdds_large_images.xml), unless one is set,
    and :data:`QOS_FROM_XML_VARIABLES`.

    A process that publishes frames of 640x480 and more needs it: Fast DDS writes a message into the
    sending process's shared-memory segment, 512 KB by default, and what does not fit goes out as
    fragmented UDP, mostly lost or late. Empty where the file is not installed.
    """
    if any(name in os.environ for name in DDS_PROFILE_VARIABLES):
        return {}
    variable = DDS_PROFILE_VARIABLES[os.environ.get('ROS_DISTRO', '') in _FAST_DDS_2_DISTROS]
    for share in share_directories():
        profile = share / 'config' / PROFILE_FILE_NAME
        if profile.is_file():
            return {variable: str(profile), **QOS_FROM_XML_VARIABLES}
    return {}


def dds_profile_in_use() -> str | None:
    """The Fast DDS profile file that a participant started now would read (None: Fast DDS's defaults)."""
    return next((os.environ[name] for name in DDS_PROFILE_VARIABLES if os.environ.get(name)), None)


def dds_summary(rmw_implementation: str, variables: Mapping[str, str] | None = None) -> str:
    """The node's start-up words on DDS: the RMW implementation and, with Fast DDS, the profile file in effect
    (the variable it comes from, or ``none``) and whether ``RMW_FASTRTPS_USE_QOS_FROM_XML=1`` lets rmw_fastrtps
    apply its history memory policy and publish mode. ``variables`` defaults to ``os.environ``.

    Fast DDS 2 (Humble, Iron, Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE; Fast DDS 3 (Kilted and
    later) reads FASTDDS_DEFAULT_PROFILES_FILE and the older name too. With ``ROS_DISTRO`` unset, both count.
    """
    env = os.environ if variables is None else variables
    if not rmw_implementation.startswith('rmw_fastrtps'):
        return f'{rmw_implementation} (no Fast DDS profile)'
    fast_dds_2 = env.get('ROS_DISTRO', '').lower() in _FAST_DDS_2_DISTROS
    read = ('FASTRTPS_DEFAULT_PROFILES_FILE',) if fast_dds_2 else DDS_PROFILE_VARIABLES
    variable = next((name for name in read if env.get(name)), None)
    if variable is None:
        ignored = [name for name in DDS_PROFILE_VARIABLES if env.get(name) and name not in read]
        note = f' ({", ".join(ignored)} is set, but this Fast DDS does not read it)' if ignored else ''
        return f'{rmw_implementation}, profile none{note}'
    qos_from_xml = all(env.get(name) == value for name, value in QOS_FROM_XML_VARIABLES.items())
    return (f'{rmw_implementation}, profile {env[variable]} ({variable}), '
            f'QoS from XML {"on" if qos_from_xml else "off"}')


def ros_environment(domain_id: int, *, localhost: bool = True, dds_profile: bool = True) -> dict[str, str]:
    """Variables for the node and this process's participant: ``ROS_DOMAIN_ID``, localhost-only
    discovery (:data:`DISCOVERY_VARIABLES`, with ``localhost``) and the Fast DDS profile for large
    images (with ``dds_profile``; see :func:`dds_profile_environment`)."""
    env = {'ROS_DOMAIN_ID': str(domain_id)}
    if localhost:
        env.update(DISCOVERY_VARIABLES)
    if dds_profile:
        env.update(dds_profile_environment())
    return env


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``variables`` set inside the block (DDS reads them when a participant starts),
    restored after it."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class NodeProcess:
    """A node started as a child process, its stdout and stderr written to ``log_path``.

    Args:
        command: e.g. :func:`node_command`.
        env: the child's whole environment (default: this process's).
        log_path: the log file (created or truncated).
        own_session: start the child in a process group of its own, which :meth:`stop` kills as a
            whole; ``False`` keeps it in the caller's group (a Ctrl-C in the terminal reaches both).
        error: the exception :meth:`check_alive` raises.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None, log_path: str | Path, *,
                 own_session: bool = True, error: type[Exception] = AnomalySegError) -> None:
        self.log_path = Path(log_path)
        self._own_session = own_session
        self._error = error
        with open(self.log_path, 'w') as log:
            self.process = subprocess.Popen(list(command), env=dict(env) if env is not None else None, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=own_session)

    def log(self) -> str:
        """What the node wrote so far."""
        return self.log_path.read_text(errors='replace')

    def check_alive(self, when: str = '') -> None:
        """Raise ``error`` when the node has exited: its status, ``when``, the last error line of its log
        (else the last line) and the log file."""
        code = self.process.poll()
        if code is None:
            return
        lines = [line for line in self.log().splitlines() if line.strip()]
        fatal = [line for line in lines if 'FATAL' in line or 'error' in line.lower()] or lines
        raise self._error(f'the node exited with status {code}{f" {when}" if when else ""}: '
                          f'{fatal[-1] if fatal else "(no output)"} (log: {self.log_path})')

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> float:
        """Send ``sig``; kill the node (its process group with ``own_session``) after ``timeout`` seconds.
        Returns the seconds until it ended."""
        start = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                if self._own_session:
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    self.process.kill()
                self.process.wait()
        return time.monotonic() - start
