"""bench/build_tools.py — compiles the C programs of `make bench` with the build's compiler and
the project's flags (-std=c11 -Wall -Wextra -Wpedantic -Werror -O2), bench_ckpt against the
build's libckpt.a. A program that does not build is reported, not fatal: its figures become null
with the compiler's message in the notes.

The MPI section's programs (bench_mpi_ckpt, bench_mpi_hdf5) are compiled with the same compiler
and Open MPI's flags from pkg-config (ompi-c: what `mpicc --showme` adds, so CC=clang builds
them with clang too); bench_mpi_ckpt links the build's libckpt_mpi.a, bench_mpi_hdf5 Debian's
parallel HDF5 (libhdf5-openmpi-dev, pkg-config hdf5-openmpi). Debian's serial and parallel HDF5
coexist with headers in different directories (/usr/include/hdf5/serial, .../openmpi), and
installing the parallel one points the generic `hdf5` pkg-config name at it: the serial peer
therefore asks for hdf5-serial by name.
"""

import os
import shlex
import subprocess

FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-g", "-D_GNU_SOURCE"]


def _pkg(args, fallback):
    try:
        out = subprocess.run(["pkg-config"] + args, capture_output=True, text=True, check=True)
        return shlex.split(out.stdout)
    except (OSError, subprocess.CalledProcessError):
        return fallback


def _hdf5_flags():
    """The serial libhdf5's flags (bench_hdf5): hdf5-serial by name, since Debian's `hdf5`
    alternative follows whichever flavour was installed last."""
    for name in ("hdf5-serial", "hdf5"):
        cflags = _pkg(["--cflags", name], None)
        libs = _pkg(["--libs", name], None)
        if cflags is not None and libs is not None and "openmpi" not in " ".join(cflags):
            return cflags, libs
    # Debian's serial HDF5 without its pkg-config file.
    return ["-I/usr/include/hdf5/serial"], ["-lhdf5_serial"]


def _phdf5_flags():
    """Parallel HDF5 over Open MPI (bench_mpi_hdf5), or None when not installed."""
    cflags = _pkg(["--cflags", "hdf5-openmpi"], None)
    libs = _pkg(["--libs", "hdf5-openmpi"], None)
    if cflags is None or libs is None:
        return None
    return cflags, libs


def _mpi_flags():
    """Open MPI's compile and link flags (what mpicc adds), or None without Open MPI."""
    cflags = _pkg(["--cflags", "ompi-c"], None)
    libs = _pkg(["--libs", "ompi-c"], None)
    if cflags is None or libs is None:
        return None
    return cflags, libs


def _ckpt_libs():
    libs = []
    for pkg, fallback in (("libcjson", ["-lcjson"]), ("libprotobuf-c", ["-lprotobuf-c"]),
                          ("libzstd", ["-lzstd"]), ("liburing", ["-luring"]),
                          ("libisal", ["-lisal"]), ("blosc", ["-lblosc"]), ("zlib", ["-lz"]),
                          ("msgpack", ["-lmsgpackc"])):
        libs += _pkg(["--libs", pkg], fallback)
    return libs + ["-lpthread", "-lm"]


def _compile(cc, out, sources, cflags, libs, log):
    cmd = [cc] + FLAGS + cflags + ["-o", out] + sources + libs
    log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr or proc.stdout).splitlines() if l.strip()]
        errors = [l for l in lines if "error" in l] or lines
        return "; ".join(errors[:3])[:600] or f"{cc} exited {proc.returncode}"
    return None


def build(repo, build_dir, out_dir, cc):
    """Builds bench_limits, bench_hdf5, bench_ckpt, bench_mpi_ckpt and bench_mpi_hdf5 into
    out_dir. Returns
    ({name: path}, {name: error text}) for what built and what did not."""
    bench = os.path.join(repo, "bench")
    common = [os.path.join(bench, "bench_common.c")]
    built, failed = {}, {}
    with open(os.path.join(out_dir, "build.log"), "w") as log:
        def one(name, sources, cflags, libs):
            out = os.path.join(out_dir, name)
            err = _compile(cc, out, [os.path.join(bench, s) for s in sources] + common, cflags, libs, log)
            if err is None:
                built[name] = out
            else:
                failed[name] = err

        one("bench_limits", ["bench_limits.c"], [], [])
        h5c, h5l = _hdf5_flags()
        one("bench_hdf5", ["bench_hdf5.c"], h5c, h5l)
        lib = os.path.join(build_dir, "lib", "libckpt.a")
        header = os.path.join(build_dir, "gen", "ckpt", "builtin.ckpt.h")
        if not os.path.exists(lib) or not os.path.exists(header):
            failed["bench_ckpt"] = f"libckpt not built ({lib} or {header} missing)"
        else:
            cflags = ["-I" + os.path.join(repo, "runtime", "include"), "-I" + os.path.join(build_dir, "gen")]
            cflags += _pkg(["--cflags", "libcjson", "libprotobuf-c", "libzstd"], [])
            one("bench_ckpt", ["bench_ckpt.c", "bench_device.c"], cflags, [lib] + _ckpt_libs())
        mpi = _mpi_flags()
        mpi_lib = os.path.join(build_dir, "lib", "libckpt_mpi.a")
        if mpi is None:
            failed["bench_mpi_ckpt"] = "Open MPI not found (pkg-config ompi-c; scripts/install-deps installs it)"
        elif "bench_ckpt" in failed:
            failed["bench_mpi_ckpt"] = failed["bench_ckpt"]
        elif not os.path.exists(mpi_lib):
            failed["bench_mpi_ckpt"] = f"libckpt_mpi not built ({mpi_lib} missing)"
        else:
            one("bench_mpi_ckpt", ["bench_mpi_ckpt.c", "bench_split.c"], cflags + mpi[0],
                [mpi_lib, lib] + _ckpt_libs() + mpi[1])
        phdf5 = _phdf5_flags()
        if phdf5 is None:
            failed["bench_mpi_hdf5"] = ("parallel HDF5 not found (pkg-config hdf5-openmpi: Debian's "
                                        "libhdf5-openmpi-dev; scripts/install-deps installs it)")
        else:
            one("bench_mpi_hdf5", ["bench_mpi_hdf5.c", "bench_split.c"], phdf5[0], phdf5[1])
    return built, failed
