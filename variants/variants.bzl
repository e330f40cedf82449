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
    ("preempt", ["coop"], "coop"),
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

def _common(kwargs):
    kwargs.setdefault("linkstatic", True)
    kwargs["linkopts"] = kwargs.get("linkopts", []) + ["-rdynamic"]
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
    # The suite carries the tests' tags: a suite of manual tests must be
    # manual too, or //... would expand it and run them.
    native.test_suite(name = name, tests = tests, tags = kwargs.get("tags", []))
