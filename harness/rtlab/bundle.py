"""Relocatable bundles: what a compute node needs to run part of a matrix.

`rtlab submit` builds the binaries once, on the submitting machine, and
copies them with the harness into a bundle, a folder that is itself a
minimal rtlab root:

  bundle.json                   where it came from: git commit and dirty flag, creation time
  scripts/rtlab, harness/rtlab/ the harness (Python standard library only for `run`)
  variants/variants.bzl         the axes, read as the checkout reads them
  workloads/<name>/             the chosen workloads' folders, copied whole
  bin/<pkg>/<name>__<variant>   the C++ binaries, laid out like bazel-bin
  bin/go/<name>                 the Go twins, already built

Invariants: nothing in a bundle names a path outside it (scripts/rtlab
finds its root from its own location, `run --bin-dir BUNDLE/bin` finds the
binaries), so it runs wherever a shared file system mounts it; and the
bundle plans exactly the cells the checkout planned, because it holds the
same variants.bzl and workload.json files. A node needs only what the
binaries link dynamically (libstdc++, libpfm4) and /usr/bin/python3.
"""
import datetime
import glob
import json
import os
import shutil

MANIFEST = "bundle.json"


def provenance(root):
    """The bundle.json of a bundle at root, or None when root is not one."""
    try:
        with open(os.path.join(root, MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(src, dst)  # follows symlinks (runfiles, bazel-bin)


def make(root, dest, cells, exe, git_commit, git_dirty):
    """Writes a bundle at dest (which must not exist) for the cells, whose
    binaries exe maps from cell key to argv (runner.resolve_binaries).
    Returns dest/bin, the --bin-dir of runs inside the bundle."""
    os.makedirs(dest)
    _copy(os.path.join(root, "scripts", "rtlab"), os.path.join(dest, "scripts", "rtlab"))
    for py in glob.glob(os.path.join(root, "harness", "rtlab", "*.py")):
        _copy(py, os.path.join(dest, "harness", "rtlab", os.path.basename(py)))
    _copy(os.path.join(root, "variants", "variants.bzl"), os.path.join(dest, "variants", "variants.bzl"))
    bin_dir = os.path.join(dest, "bin")
    copied = set()
    for c in cells:
        w = c.workload
        if w.name not in copied:
            shutil.copytree(w.folder, os.path.join(dest, "workloads", w.name))
            copied.add(w.name)
        if c.impl == "go":
            _copy(exe[c.key()][0], os.path.join(bin_dir, "go", w.name))
        elif not w.command:
            _copy(exe[c.key()][0], w.cxx_binary(bin_dir, c.variant))
    os.makedirs(bin_dir, exist_ok=True)
    with open(os.path.join(dest, MANIFEST), "w") as f:
        json.dump({"rtlab_bundle": 1, "git_commit": git_commit, "git_dirty": git_dirty,
                   "created": datetime.datetime.utcnow().isoformat() + "Z"}, f, indent=1)
    return bin_dir
