"""The variant matrix: one binary per combination of policy variants.

Each policy axis has one interface header in runtime/policy/ and one
cc_library per variant in variants/<axis>/<name>/. Selection is at link
time: a target built with rt_cc_binary or rt_cc_test becomes one binary per
combination, named <name>__<variant>_<variant>... in axis order
(e.g. chan_pingpong__perp_coop_radix). Adding a variant to an axis is a new folder
and one entry in AXES; adding an axis is one more entry (and its policy
header declaring `const char* rt::policy::<axis>::name()`).

A target's sources compile once (a library `<name>_srcs`); only linking
happens per combination. A target may name the axes it exercises (`axes = ["runq"]`): it is then
built over the variants of those axes only, every other axis at its
default, so the matrix stays affordable as axes grow. Names keep every axis
(a runq-only test still yields foo__global_coop_radix), so a binary's name,
rt::variant_name() and the harness always agree.
"""

# (axis, variants, default). The first default combination is what Go does.
AXES = [
    ("runq", ["global", "perp"], "perp"),
    ("preempt", ["coop", "signal"], "signal"),
    ("pagealloc", ["treap", "radix"], "radix"),
]

def axis_names():
    return [axis for axis, _, _ in AXES]

def variant_combinations(axes = None):
    """Every combination over `axes` (default: all), as lists of variant names in AXES order.

    Axes not named stay at their default.
    """
    if axes == None:
        axes = axis_names()
    for axis in axes:
        if axis not in axis_names():
            fail("unknown axis %r (AXES in variants/variants.bzl has: %s)" % (axis, ", ".join(axis_names())))
    combos = [[]]
    for axis, variants, default in AXES:
        choices = variants if axis in axes else [default]
        combos = [c + [v] for c in combos for v in choices]
    return combos

def default_combination():
    return [default for _, _, default in AXES]

def combination_name(combo):
    return "_".join(combo)

def _variant_deps(combo):
    return ["//variants/%s/%s" % (axis, v) for (axis, _, _), v in zip(AXES, combo)]

# Compile options of the runtime and every variant library. LTO inlines
# the policies into the scheduler's hot paths; -ffunction-sections lets
# the linker script gather the runtime's code into rt_text. The objects
# are fat (LTO bytecode and machine code): binaries (rt_cc_binary: the
# workloads and benchmarks, whose speed is measured) link with LTO, tests
# (rt_cc_test) link the machine code without it. An LTO link compiles the
# whole runtime again, about 20 s of CPU per binary on the 2-core VM, and
# the test matrix links over a hundred binaries; the same sources and
# options are compiled either way, and the workloads' smoke tests run the
# LTO builds.
RUNTIME_COPTS = [
    "-flto=auto",
    "-ffat-lto-objects",
    "-ffunction-sections",
]

_RT_TEXT_LD = "//runtime:arch/rt_text.ld"

# Attributes that shape how the sources compile; they go to the one
# library of sources, the rest to the per-combination targets.
_COMPILE_ATTRS = ["srcs", "copts", "defines", "local_defines", "includes"]

def _common(name, deps, kwargs, linker):
    """Compiles the target's sources once, into `<name>_srcs`; returns the
    deps and attributes of the per-combination targets that link it.

    The sources are compiled without LTO, so that no runtime function is
    ever inlined into user code: the SIGURG handler of the signal variant
    takes a PC in rt_text for runtime code and any other PC in the
    executable for user code (runtime/sched/preempt.cc). `linker` places
    rt_text into its default linker script with INSERT, which gold lacks:
    "bfd" (GNU ld, the only one that runs GCC's LTO plugin) or "lld"
    (LLVM's, for the links without LTO: 0.1 s where GNU ld takes 5-13 s
    per test binary, and the matrix links over a hundred).
    """
    lib = {k: kwargs.pop(k) for k in _COMPILE_ATTRS if k in kwargs}
    lib["copts"] = ["-fno-lto"] + lib.get("copts", [])
    native.cc_library(
        name = name + "_srcs",
        deps = deps + ["//runtime:core_headers"],
        alwayslink = True,
        linkstatic = True,
        testonly = kwargs.get("testonly", False),
        **lib
    )
    kwargs.setdefault("linkstatic", True)
    kwargs["linkopts"] = kwargs.get("linkopts", []) + [
        "-rdynamic",
        "-ffunction-sections",
        "-fuse-ld=" + linker,
        "-Wl,-T,$(location %s)" % _RT_TEXT_LD,
    ]
    kwargs["additional_linker_inputs"] = kwargs.get("additional_linker_inputs", []) + [_RT_TEXT_LD]

    # GNU ld has no --start-lib: link libraries as archives (either linker).
    kwargs["features"] = kwargs.get("features", []) + ["-supports_start_end_lib"]
    return [":" + name + "_srcs", "//runtime"], kwargs

def rt_cc_binary(name, deps = [], axes = None, **kwargs):
    """A cc_binary per combination over `axes` (default all), plus `name` aliasing the default one."""
    deps, kwargs = _common(name, deps, kwargs, linker = "bfd")
    kwargs["linkopts"] = kwargs["linkopts"] + ["-flto=auto"]
    tags = kwargs.pop("tags", [])
    for combo in variant_combinations(axes):
        # scripts/test links only the default combination of each binary
        # (--build_tag_filters=-nondefault_variant), and the others that
        # tests run: every combination is the same sources, and each LTO
        # link costs about 20 s of CPU.
        native.cc_binary(
            name = name + "__" + combination_name(combo),
            deps = deps + _variant_deps(combo),
            tags = tags + ([] if combo == default_combination() else ["nondefault_variant"]),
            **kwargs
        )
    native.alias(
        name = name,
        actual = ":" + name + "__" + combination_name(default_combination()),
    )

def rt_cc_test(name, deps = [], axes = None, **kwargs):
    """A cc_test per combination over `axes` (default all), plus a test_suite `name` holding exactly those."""
    deps, kwargs = _common(name, deps, kwargs, linker = "lld")
    tests = []
    for combo in variant_combinations(axes):
        test_name = name + "__" + combination_name(combo)
        native.cc_test(
            name = test_name,
            deps = deps + _variant_deps(combo),
            **kwargs
        )
        tests.append(":" + test_name)
    # The suite carries the tests' tags: a suite of manual tests must be
    # manual too, or //... would expand it and run them.
    native.test_suite(name = name, tests = tests, tags = kwargs.get("tags", []))

def policy_axes_header(name, out):
    """A genrule writing `out`: RT_POLICY_AXES(X), which applies X to every axis in AXES order.

    The runtime names axes only through it (rt::variant_name()), so a new
    axis needs no edit there.
    """
    native.genrule(
        name = name,
        outs = [out],
        cmd = "printf '%s\\n' " + " ".join([
            "'// Generated from AXES in variants/variants.bzl by policy_axes_header.'",
            "'#pragma once'",
            "'#define RT_POLICY_AXES(X) %s'" % " ".join(["X(%s)" % a for a in axis_names()]),
        ]) + " > $@",
    )
