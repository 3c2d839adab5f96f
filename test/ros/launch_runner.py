"""``ros2 launch anomaly_seg_ros anomaly_seg.launch.py ARGS`` (and ``-s``/``--show-args``), as ros2cli runs
it (ros2cli has no wheel).

test_launch_real.py starts this as a process with one distribution's real launch libraries first on
PYTHONPATH and the package in an ament prefix; the exit status is launch's.
"""
import sys

from ros2launch.api import get_share_file_path_from_package, launch_a_launch_file, print_arguments_of_launch_file


def main(arguments: list[str]) -> int:
    path = get_share_file_path_from_package(package_name='anomaly_seg_ros', file_name='anomaly_seg.launch.py')
    if arguments == ['--show-args']:
        print_arguments_of_launch_file(launch_file_path=path)
        return 0
    return launch_a_launch_file(launch_file_path=path, launch_file_arguments=arguments, noninteractive=True)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
