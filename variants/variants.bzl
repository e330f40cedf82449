"""The variant matrix: one binary per combination of policy variants.

Each policy axis has one interface header in runtime/policy/ and one
cc_library per variant in variants/<axis>/<name>/. Selection is at link
time: a target built with rt_cc_binary or rt_cc_test becomes one binary per
combination, named <name>__<variant>_<variant>... in axis order
(e.g. chan_pingpong__perp_coop_radix). Adding a variant to an axis is a new folder
and one entry in AXES; adding an axis is one more entry.
"""

# (axis, variants, default). The first default combination is what Go does.
AXES = [
    ("runq", ["global", "perp"], "perp"),
    ("preempt", ["coop", "signal"], "signal"),
    ("pagealloc", ["treap", "radix"], "radix"),
]

def variant_combinations():
    """Returns every combination as a list of variant names, in AXES order."""
    combos = [[]]
    for _, variants, _ in AXES:
        combos = [c + [v] for c in combos for v in variants]
    return combos

def default_combination():
    return [default for _, _, default in AXES]

def combination_name(combo):
    return "_".join(combo)

def _variant_deps(combo):
    return ["//variants/%s/%s" % (axis, v) for (axis, _, _), v in zip(AXES, combo)]

# Compile options of the runtime and every variant library. LTO inlines
# the policies into the scheduler's hot paths; -ffunction-sections lets
# the linker script gather the runtime's code into rt_text.
RUNTIME_COPTS = [
    "-flto=auto",
    "-ffunction-sections",
]

_RT_TEXT_LD = "//runtime:arch/rt_text.ld"

def _common(kwargs):
    """Options of every binary and test that links the runtime.

    Its own sources are compiled without LTO, so that no runtime function
    is ever inlined into user code: the SIGURG handler of the signal
    variant takes a PC in rt_text for runtime code and any other PC in the
    executable for user code (runtime/sched/preempt.cc). The link uses GNU
    ld (gold lacks INSERT), which places rt_text into its default linker
    script.
    """
    kwargs.setdefault("linkstatic", True)
    kwargs["copts"] = ["-fno-lto"] + kwargs.get("copts", [])
    kwargs["linkopts"] = kwargs.get("linkopts", []) + [
        "-rdynamic",
        "-ffunction-sections",
        "-fuse-ld=bfd",
        "-Wl,-T,$(location %s)" % _RT_TEXT_LD,
    ]
    kwargs["additional_linker_inputs"] = kwargs.get("additional_linker_inputs", []) + [_RT_TEXT_LD]

    # GNU ld has no --start-lib: link libraries as archives.
    kwargs["features"] = kwargs.get("features", []) + ["-supports_start_end_lib"]
    return kwargs

def rt_cc_binary(name, deps = [], **kwargs):
    """A cc_binary per combination, plus `name` aliasing the default one."""
    kwargs = _common(kwargs)
    for combo in variant_combinations():
        native.cc_binary(
            name = name + "__" + combination_name(combo),
            deps = deps + ["//runtime"] + _variant_deps(combo),
            **kwargs
        )
    native.alias(
        name = name,
        actual = ":" + name + "__" + combination_name(default_combination()),
    )

def rt_cc_test(name, deps = [], **kwargs):
    """A cc_test per combination, plus a test_suite `name` holding them all."""
    kwargs = _common(kwargs)
    tests = []
    for combo in variant_combinations():
        test_name = name + "__" + combination_name(combo)
        native.cc_test(
            name = test_name,
            deps = deps + ["//runtime"] + _variant_deps(combo),
            **kwargs
        )
        tests.append(":" + test_name)
    native.test_suite(name = name, tests = tests)
