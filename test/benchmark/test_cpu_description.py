"""The one-line CPU description every quoted figure carries: model, cores, widest vector extension, read
from /proc/cpuinfo texts of an AVX2-only Zen 3, AVX-512 (VNNI) EPYCs and Xeons, an AMX Xeon and aarch64."""
from __future__ import annotations

import subprocess
import sys

from anomaly_seg_ros.benchmark.machine import cpu_description, machine_info

_BASE = 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ssse3 sse4_1 sse4_2 popcnt'


def _x86(model: str, flags: str, cpus: int = 2, cores: int | None = None, hypervisor: bool = False) -> str:
    cores = cores or cpus
    flags = f'{_BASE} {flags}' + (' hypervisor' if hypervisor else '')
    return '\n\n'.join(f'processor\t: {i}\nvendor_id\t: AuthenticAMD\nmodel name\t: {model}\nphysical id\t: 0\n'
                       f'siblings\t: {cpus}\ncore id\t\t: {i % cores}\ncpu cores\t: {cores}\nflags\t\t: {flags}'
                       for i in range(cpus)) + '\n'


ZEN3 = _x86('AMD EPYC 7B13', 'avx f16c fma avx2 bmi2 sha_ni vaes', hypervisor=True)
EPYC_GENOA = _x86('AMD EPYC', 'avx fma avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni '
                  'avx512_bitalg', hypervisor=True)
SKYLAKE = _x86('Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz', 'avx fma avx2 avx512f avx512dq avx512bw avx512vl',
               cpus=8, cores=4)
SAPPHIRE_RAPIDS = _x86('Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz', 'avx avx2 avx512f avx512_vnni avx_vnni '
                       'amx_bf16 amx_tile amx_int8', cpus=4, hypervisor=True)
ALDER_LAKE = _x86('12th Gen Intel(R) Core(TM) i7-12700H', 'avx fma avx2 avx_vnni', cpus=20, cores=14)
ZEN3_DESKTOP = _x86('AMD Ryzen 9 5950X 16-Core Processor', 'avx fma avx2', cpus=32, cores=16)
ORIN = ''.join(f'processor\t: {i}\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics '
               f'fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm paca pacg\nCPU implementer\t: '
               f'0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd42\nCPU revision\t: 1\n\n'
               for i in range(6))
GRAVITON3 = ''.join(f'processor\t: {i}\nFeatures\t: fp asimd evtstrm aes sve asimddp sveint8 i8mm bf16\n'
                    f'CPU implementer\t: 0x41\nCPU part\t: 0xd40\n\n' for i in range(4))
GRACE = ''.join(f'processor\t: {i}\nFeatures\t: fp asimd sve sve2 i8mm bf16\nCPU implementer\t: 0x41\n'
                f'CPU part\t: 0xd4f\n\n' for i in range(2))


def test_an_avx2_only_zen3_is_named_avx2():
    assert cpu_description(ZEN3, 'x86_64') == 'AMD EPYC 7B13, 2 vCPUs, AVX2'
    assert cpu_description(ZEN3_DESKTOP, 'x86_64') == 'AMD Ryzen 9 5950X, 16 cores, 32 threads, AVX2'


def test_avx512_with_and_without_vnni():
    assert cpu_description(EPYC_GENOA, 'x86_64') == 'AMD EPYC, 2 vCPUs, AVX-512 VNNI'
    assert cpu_description(SKYLAKE, 'x86_64') == 'Intel Xeon Gold 6130, 4 cores, 8 threads, AVX-512'


def test_amx_is_the_widest_and_avx_vnni_is_named_beside_avx2():
    assert cpu_description(SAPPHIRE_RAPIDS, 'x86_64') == 'Intel Xeon Platinum 8481C, 4 vCPUs, AMX'
    assert cpu_description(ALDER_LAKE, 'x86_64') == \
        '12th Gen Intel Core i7-12700H, 14 cores, 20 threads, AVX2 + AVX-VNNI'


def test_aarch64_names_neon_sve_or_sve2_and_the_core_from_its_ids():
    assert cpu_description(ORIN, 'aarch64') == 'ARM Cortex-A78AE, 6 cores, NEON'
    assert cpu_description(GRAVITON3, 'aarch64') == 'ARM Neoverse V1, 4 cores, SVE'
    assert cpu_description(GRACE, 'aarch64') == 'ARM Neoverse V2, 2 cores, SVE2'
    unknown_part = 'processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x99\nCPU part\t: 0x123\n'
    assert cpu_description(unknown_part, 'aarch64') == 'implementer 0x99 CPU part 0x123, 1 core, NEON'


def test_an_unreadable_or_foreign_cpuinfo_still_gives_a_line():
    assert cpu_description('', 'riscv64') == 'riscv64, cores unknown, unknown'
    assert cpu_description('', 'arm64') == 'arm64, cores unknown, NEON'  # e.g. macOS: no /proc/cpuinfo
    old = 'processor : 0\nmodel name : Old\nflags : fpu sse sse2\n'
    assert cpu_description(old, 'x86_64') == 'Old, 1 core, unknown'


def test_a_container_limited_to_part_of_the_machine_says_how_many_cpus_it_may_use():
    assert cpu_description(SKYLAKE, 'x86_64', usable_cores=2) == \
        'Intel Xeon Gold 6130, 4 cores, 8 threads (2 usable), AVX-512'


def test_this_machine_is_described_in_machine_info_without_importing_torch():
    code = ('import sys; from anomaly_seg_ros.benchmark.machine import cpu_description, machine_info; '
            'd = cpu_description(); assert d == machine_info()["cpu_description"], d; '
            'assert "torch" not in sys.modules; print(d)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out.count(', ') >= 2 and machine_info()['cpu_description'] == out
