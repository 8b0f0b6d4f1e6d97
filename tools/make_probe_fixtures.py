#!/usr/bin/env python3
"""Writes the synthetic and completed sysfs trees under tests/fixtures/probe/ that rocm-probe's tests
replay with --sysfs-root. Deterministic: rerun it and `git diff` shows nothing.

Each tree is a machine: sys/class/kfd/kfd/topology/nodes/N/{properties,mem_banks/0/properties},
sys/class/drm/renderD<minor>/device/{vendor,device,...}, opt/rocm/lib/rocblas/library/TensileLibrary_*.
Where a node comes from a real capture (tests/fixtures/kfd/), the capture's lines are kept in order and
the lines the capture lacks are appended after a marker in the README, never in the properties file
(the kernel has no comment syntax).
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CAPTURES = os.path.join(REPO, "tests", "fixtures", "kfd")
OUT = os.path.join(REPO, "tests", "fixtures", "probe")

GIB = 1 << 30
MIB = 1 << 20

# The 29 keys a ~6.x kernel prints for every node, in its order, then the GPU-only keys.
COMMON_KEYS = [
    "cpu_cores_count", "simd_count", "mem_banks_count", "caches_count", "io_links_count", "p2p_links_count",
    "cpu_core_id_base", "simd_id_base", "max_waves_per_simd", "lds_size_in_kb", "gds_size_in_kb", "num_gws",
    "wave_front_size", "array_count", "simd_arrays_per_engine", "cu_per_simd_array", "simd_per_cu",
    "max_slots_scratch_cu", "gfx_target_version", "vendor_id", "device_id", "location_id", "domain",
    "drm_render_minor", "hive_id", "num_sdma_engines", "num_sdma_xgmi_engines", "num_sdma_queues_per_engine",
    "num_cp_queues",
]
GPU_TAIL = ["max_engine_clk_fcompute", "local_mem_size", "fw_version", "capability", "debug_prop",
            "sdma_fw_version", "unique_id", "num_xcc", "max_engine_clk_ccompute"]


def parse(text):
    return [tuple(line.split(" ", 1)) for line in text.splitlines() if line]


def render(pairs):
    return "".join(f"{k} {v}\n" for k, v in pairs)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def cpu_node(cores, clock):
    values = {k: 0 for k in COMMON_KEYS}
    values.update(cpu_cores_count=cores, mem_banks_count=1, io_links_count=1)
    return [(k, str(values[k])) for k in COMMON_KEYS] + [("max_engine_clk_ccompute", str(clock))]


def gpu_node(gfx, device, simd, simd_per_cu, location, minor, unique_id, wave=32, capability=671588992):
    values = {k: 0 for k in COMMON_KEYS}
    values.update(simd_count=simd, mem_banks_count=1, caches_count=100, io_links_count=1,
                  simd_id_base=2147487744, max_waves_per_simd=16, lds_size_in_kb=64, num_gws=64,
                  wave_front_size=wave, array_count=4, simd_arrays_per_engine=2, cu_per_simd_array=8,
                  simd_per_cu=simd_per_cu, max_slots_scratch_cu=32, gfx_target_version=gfx, vendor_id=4098,
                  device_id=device, location_id=location, drm_render_minor=minor, num_sdma_engines=2,
                  num_sdma_queues_per_engine=6, num_cp_queues=8)
    tail = dict(max_engine_clk_fcompute=2400, local_mem_size=0, fw_version=550, capability=capability,
                debug_prop=1495, sdma_fw_version=21, unique_id=unique_id, num_xcc=1, max_engine_clk_ccompute=4000)
    return [(k, str(values[k])) for k in COMMON_KEYS] + [(k, str(tail[k])) for k in GPU_TAIL]


class Machine:
    def __init__(self, name):
        self.root = os.path.join(OUT, name)
        shutil.rmtree(self.root, ignore_errors=True)
        self.topology = os.path.join(self.root, "sys/class/kfd/kfd/topology")
        write(os.path.join(self.topology, "generation_id"), "1\n")

    def node(self, index, pairs, vram=None, heap=1, used=None):
        d = os.path.join(self.topology, "nodes", str(index))
        write(os.path.join(d, "properties"), render(pairs))
        is_gpu = dict(pairs).get("simd_count", "0") != "0"
        write(os.path.join(d, "gpu_id"), f"{(index * 7919) % 65536 if is_gpu else 0}\n")
        write(os.path.join(d, "name"), "ip discovery\n" if is_gpu else "\n")
        bank = os.path.join(d, "mem_banks/0")
        size = vram if is_gpu else 64 * GIB
        write(os.path.join(bank, "properties"),
              f"heap_type {heap if is_gpu else 0}\nsize_in_bytes {size}\nflags 0\nwidth 64\nmem_clk_max 2500\n")
        if used is not None:
            write(os.path.join(bank, "used_memory"), f"{used}\n")

    def drm(self, minor, device, revision, slot, vram_total, vram_used, gtt, unique_id, board=True):
        d = os.path.join(self.root, f"sys/class/drm/renderD{minor}/device")
        write(os.path.join(d, "vendor"), "0x1002\n")
        write(os.path.join(d, "device"), f"0x{device:04x}\n")
        write(os.path.join(d, "revision"), f"0x{revision:02x}\n")
        write(os.path.join(d, "uevent"), f"DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:{device:04X}\nPCI_SLOT_NAME={slot}\n")
        write(os.path.join(d, "unique_id"), f"{unique_id:x}\n")
        write(os.path.join(d, "mem_info_vram_total"), f"{vram_total}\n")
        write(os.path.join(d, "mem_info_vram_used"), f"{vram_used}\n")
        write(os.path.join(d, "mem_info_vis_vram_total"), f"{vram_total}\n")
        write(os.path.join(d, "mem_info_gtt_total"), f"{gtt}\n")
        if board:
            write(os.path.join(d, "mem_info_vram_vendor"), "samsung\n")
            write(os.path.join(d, "board_info"), "type : oam\n")
        os.symlink("../../../bus/pci/drivers/amdgpu", os.path.join(d, "driver"))

    def rocblas(self, targets):
        d = os.path.join(self.root, "opt/rocm/lib/rocblas/library")
        for t in targets:
            write(os.path.join(d, f"TensileLibrary_lazy_{t}.dat"), "")
            write(os.path.join(d, f"Kernels.so-000-{t}.hsaco"), "")
        write(os.path.join(d, "TensileManifest.txt"), "")


# Targets the Arch rocblas package ships kernels for (a plausible install; only the names matter).
ARCH_ROCBLAS = ["gfx908", "gfx90a", "gfx942", "gfx1030", "gfx1100", "gfx1101", "gfx1102", "gfx1151", "gfx1200", "gfx1201"]


def rx7900xtx():
    """CPU + RX 7900 XTX, completed from the ollama#2411 excerpt: the capture ends after debug_prop."""
    text = open(os.path.join(CAPTURES, "ollama-2411-rx7900xtx-plus-cpu/nodes-concatenated.EXCERPT.txt")).read()
    pairs = parse(text)
    split = [i for i, (k, _) in enumerate(pairs) if k == "cpu_cores_count"][1]
    cpu, gpu = pairs[:split], pairs[split:]
    completed = [("sdma_fw_version", "21"), ("unique_id", str(0x8C2A1B3D4E5F6071)), ("num_xcc", "1"),
                 ("max_engine_clk_ccompute", "5482")]
    m = Machine("rx7900xtx")
    m.node(0, cpu)
    m.node(1, gpu + completed, vram=25753026560, used=1153433600)
    m.drm(128, 0x744C, 0xC8, "0000:03:00.0", 25753026560, 1153433600, 33292120064, 0x8C2A1B3D4E5F6071)
    m.rocblas(ARCH_ROCBLAS)
    return "rx7900xtx: CPU + RX 7900 XTX (gfx1100, 0x744c rev c8), from ollama#2411's excerpt completed with " + \
        ", ".join(k for k, _ in completed) + " (synthetic values); mem_banks, DRM and rocBLAS files synthetic"


def rx6800xt():
    m = Machine("rx6800xt")
    m.node(0, cpu_node(16, 4500))
    m.node(1, gpu_node(100300, 0x73BF, 144, 2, 0x0B00, 128, 0x1F2E3D4C5B6A7988), vram=17163091968)
    m.drm(128, 0x73BF, 0xC1, "0000:0b:00.0", 17163091968, 402653184, 16717496320, 0x1F2E3D4C5B6A7988)
    m.rocblas(ARCH_ROCBLAS)
    return "rx6800xt: synthetic CPU + RX 6800 XT (gfx1030, 0x73bf rev c1, 72 CUs) in the RX 7900 XTX node's shape"


def laptop():
    m = Machine("laptop-780m-7600s")
    m.node(0, cpu_node(16, 5100))
    # The iGPU is node 1 and renderD128, as on most laptops; ROCm order follows KFD, not DRM.
    m.node(1, gpu_node(110003, 0x15BF, 24, 2, 0xC400, 128, 0, capability=671588992), vram=512 * MIB)
    m.node(2, gpu_node(110002, 0x7480, 64, 2, 0x0300, 129, 0x4A5B6C7D8E9FA0B1), vram=8 * GIB)
    m.drm(128, 0x15BF, 0xC4, "0000:c4:00.0", 512 * MIB, 180 * MIB, 15 * GIB + 512 * MIB, 0, board=False)
    m.drm(129, 0x7480, 0xC3, "0000:03:00.0", 8 * GIB, 300 * MIB, 15 * GIB + 512 * MIB, 0x4A5B6C7D8E9FA0B1)
    m.rocblas(ARCH_ROCBLAS)
    return ("laptop-780m-7600s: synthetic CPU + Radeon 780M iGPU (gfx1103, 0x15bf, 512 MiB UMA) at node 1 + "
            "RX 7600S dGPU (gfx1102, 0x7480 rev c3) at node 2")


def strixhalo():
    """Strix Halo iGPU from lemonade#419's excerpt, which stops after device_id."""
    pairs = parse(open(os.path.join(CAPTURES, "lemonade-419-strixhalo-gfx1151/nodes/1/properties.EXCERPT.txt")).read())
    have = {k for k, _ in pairs}
    completed = [(k, v) for k, v in [("location_id", str(0xC500)), ("domain", "0"), ("drm_render_minor", "128"),
                                     ("hive_id", "0"), ("num_sdma_engines", "2"), ("num_sdma_xgmi_engines", "0"),
                                     ("num_sdma_queues_per_engine", "6"), ("num_cp_queues", "8"),
                                     ("max_engine_clk_fcompute", "2900"), ("local_mem_size", "0"),
                                     ("fw_version", "30"), ("capability", "671588992"), ("debug_prop", "1495"),
                                     ("sdma_fw_version", "14"), ("unique_id", "0"), ("num_xcc", "1"),
                                     ("max_engine_clk_ccompute", "5100")] if k not in have]
    m = Machine("strixhalo")
    m.node(0, cpu_node(32, 5100))
    m.node(1, pairs + completed, vram=512 * MIB)
    return ("strixhalo: synthetic CPU + Strix Halo node from lemonade#419's excerpt completed with " +
            ", ".join(k for k, _ in completed) + " (synthetic); KFD only, no DRM, no rocBLAS")


def mi300x_8gpu():
    """Eight whole MI300X (gfx942) on a two-socket host, from the k8s-mi300x-cpx node shapes."""
    cpu = parse(open(os.path.join(CAPTURES, "k8s-mi300x-cpx/nodes/0/properties")).read())
    gpu = parse(open(os.path.join(CAPTURES, "k8s-mi300x-cpx/nodes/2/properties")).read())
    m = Machine("mi300x-8gpu")
    m.node(0, cpu)
    m.node(1, cpu)
    buses = [0x05, 0x26, 0x46, 0x65, 0x85, 0xA6, 0xC6, 0xE5]
    for i, bus in enumerate(buses):
        uid = 0x2A00_0000_0000_0000 + i * 0x1111_1111
        fields = dict(location_id=str(bus << 8), drm_render_minor=str(128 + i), unique_id=str(uid),
                      simd_count="1216", cu_per_simd_array="38")
        pairs = [(k, fields.get(k, v)) for k, v in gpu]
        m.node(2 + i, pairs, vram=206141652992, used=2907979776)
        m.drm(128 + i, 0x74A1, 0x00, f"0000:{bus:02x}:00.0", 206141652992, 2907979776, 1081864880128, uid)
    m.rocblas(ARCH_ROCBLAS)
    return ("mi300x-8gpu: two CPU nodes from k8s-mi300x-cpx node 0 + eight whole MI300X (gfx942) nodes from its "
            "node 2, with bus, render minor, unique_id and CU count changed (SPX mode); DRM and rocBLAS synthetic")


def bad_files():
    d = os.path.join(OUT, "bad")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    good = render(gpu_node(100300, 0x73BF, 144, 2, 0x0B00, 128, 0))
    # Cut mid-line, as a capture interrupted by a full disk leaves it.
    write(os.path.join(d, "properties-truncated"), good[: good.index("gfx_target_version") + 11])
    with open(os.path.join(d, "properties-garbage"), "wb") as f:
        f.write(bytes((i * 37 + 11) % 256 for i in range(300)))
    write(os.path.join(d, "properties-hex-value"), good.replace("vendor_id 4098", "vendor_id 0x1002"))
    return ("bad/: properties-truncated (the RX 6800 XT node cut inside gfx_target_version), properties-garbage "
            "(300 bytes of noise), properties-hex-value (vendor_id printed as hex, which the kernel never does)")


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = [f(  ) for f in (rx7900xtx, rx6800xt, laptop, strixhalo, mi300x_8gpu, bad_files)]
    readme = ["# rocm-probe replay trees", "",
              "Written by `tools/make_probe_fixtures.py` (rerun it to regenerate; the output is deterministic).",
              "Each folder is a machine root for `rocm-probe --sysfs-root`.", ""]
    readme += [f"- {line}" for line in lines]
    write(os.path.join(OUT, "README.md"), "\n".join(readme) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
