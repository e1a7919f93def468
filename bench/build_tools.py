"""bench/build_tools.py — compiles the C programs of `make bench` with the build's compiler and
the project's flags (-std=c11 -Wall -Wextra -Wpedantic -Werror -O2), bench_ckpt against the
build's libckpt.a. A program that does not build is reported, not fatal: its figures become null
with the compiler's message in the notes.
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
    cflags = _pkg(["--cflags", "hdf5"], None)
    libs = _pkg(["--libs", "hdf5"], None)
    if cflags is None or libs is None:
        # Debian's serial HDF5 without its pkg-config alternative.
        return ["-I/usr/include/hdf5/serial"], ["-lhdf5_serial"]
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
    """Builds bench_limits, bench_hdf5 and bench_ckpt into out_dir. Returns
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
    return built, failed
