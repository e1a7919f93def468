"""bench/machine.py — what results.json says about the machine a run measured: CPU, memory,
kernel, the file system and device under the data directory, tool versions, and the load
average around the run (other work on a shared machine shows up there)."""

import os
import platform
import subprocess


def _first(path, prefix):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _mount_of(path):
    """(mount point, device, fs type) of the longest /proc/mounts prefix of path."""
    path = os.path.realpath(path)
    best = ("", None, None)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best[0]):
                    best = (mnt, dev, fstype)
    except OSError:
        pass
    return best


def _cmd(args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def info(data_dir, cc, python):
    mnt, dev, fstype = _mount_of(data_dir)
    mem_kib = _first("/proc/meminfo", "MemTotal")
    versions = _cmd([python, "-c",
                     "import numpy, zarr, numcodecs, sys; "
                     "print(sys.version.split()[0], numpy.__version__, zarr.__version__, numcodecs.__version__)"])
    py, np_v, zarr_v, numcodecs_v = (versions.split() + [None] * 4)[:4] if versions else [None] * 4
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory_bytes": int(mem_kib.split()[0]) * 1024 if mem_kib else None,
        "kernel": platform.release(),
        "data_dir": data_dir,
        "data_mount": mnt,
        "data_device": dev,
        "data_fs": fstype,
        "cc": _cmd([cc, "--version"]),
        "hdf5": _cmd(["pkg-config", "--modversion", "hdf5-serial"]) or _cmd(["pkg-config", "--modversion", "hdf5"]),
        "hdf5_parallel": _cmd(["pkg-config", "--modversion", "hdf5-openmpi"]),  # the MPI section's peer
        "openmpi": _cmd(["pkg-config", "--modversion", "ompi-c"]),
        "fio": _cmd(["fio", "--version"]),  # the device limit (bench_device.c)
        "python": py,
        "numpy": np_v,
        "zarr": zarr_v,
        "numcodecs": numcodecs_v,
    }
