"""ament_python package anomaly_seg_ros; also installs with pip (see README)."""
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'anomaly_seg_ros'
HERE = Path(__file__).resolve().parent


def _requirements(group: str) -> list[str]:
    lines = (HERE / 'requirements' / f'{group}.txt').read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


def _model_data_files() -> list[tuple[str, list[str]]]:
    """One data_files entry per shipped model directory, so models/<name>/ installs to share/."""
    entries = []
    for model_dir in sorted(glob('models/*/')):
        files = sorted(f for f in glob(f'{model_dir}*') if Path(f).is_file())
        if files:
            entries.append((f'share/{PACKAGE}/{model_dir.rstrip("/")}', files))
    return entries


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.xml')),
        *_model_data_files(),
    ],
    install_requires=['setuptools'],
    extras_require={
        'runtime': _requirements('runtime'),
        'tools': _requirements('tools'),
        'dev': _requirements('dev'),
        'gpu-cuda12': _requirements('gpu-cuda12'),
        'gpu-cuda13': _requirements('gpu-cuda13'),
    },
    zip_safe=True,
    maintainer='anomaly_seg_ros developers',
    maintainer_email='dev@anomaly-seg-ros.invalid',
    description='Pixel-wise anomaly segmentation for driving scenes as a ROS 2 node.',
    license='Apache-2.0',
    tests_require=['pytest'],
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'anomaly_seg_node = anomaly_seg_ros.ros.node:main',
            'anomaly_seg = anomaly_seg_ros.cli:main',
        ],
    },
)
