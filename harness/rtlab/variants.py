"""The variant matrix, read from variants/variants.bzl (AXES) with ast.

Never hard-codes the axes: adding an axis or a variant to AXES is seen here.
A combination is a tuple of variant names in AXES order; its name joins them
with "_" (the suffix of the Bazel target: <name>__<combination>).
"""
import ast
import itertools
import os


class VariantError(ValueError):
    pass


class Matrix:
    def __init__(self, axes):
        # axes: [(axis, [variants], default)]
        if not axes:
            raise VariantError("AXES is empty")
        self.axes = [(a, list(vs), d) for a, vs, d in axes]
        for a, vs, d in self.axes:
            if d not in vs:
                raise VariantError(f"axis {a}: default {d!r} is not one of {vs}")

    @property
    def axis_names(self):
        return [a for a, _, _ in self.axes]

    def default(self):
        return tuple(d for _, _, d in self.axes)

    def all(self):
        return [tuple(c) for c in itertools.product(*[vs for _, vs, _ in self.axes])]

    @staticmethod
    def name(combo):
        return "_".join(combo)

    def by_name(self, name):
        for c in self.all():
            if self.name(c) == name:
                return c
        return None

    def describe(self, combo):
        return ",".join(f"{a}={v}" for (a, _, _), v in zip(self.axes, combo))

    def parse(self, spec):
        """Variants named by one --variant value, as a list of combinations.

        Forms: "all"; "axis=v,axis=v" (unnamed axes take their default; a
        value may be "*" for every variant of that axis, or "a|b");
        a combination name like "perp_coop"; several specs separated by ";".
        """
        out = []
        for part in [p.strip() for p in spec.split(";") if p.strip()]:
            if part == "all":
                out.extend(self.all())
            elif part == "default":
                out.append(self.default())
            elif "=" in part:
                chosen = {}
                for kv in part.split(","):
                    kv = kv.strip()
                    if "=" not in kv:
                        raise VariantError(f"--variant {spec!r}: '{kv}' is not axis=variant")
                    k, v = [s.strip() for s in kv.split("=", 1)]
                    axes = {a: vs for a, vs, _ in self.axes}
                    if k not in axes:
                        raise VariantError(
                            f"--variant {spec!r}: unknown axis '{k}' (axes: {', '.join(self.axis_names)})")
                    vals = axes[k] if v == "*" else v.split("|")
                    for x in vals:
                        if x not in axes[k]:
                            raise VariantError(
                                f"--variant {spec!r}: unknown variant '{x}' of axis {k} "
                                f"(known: {', '.join(axes[k])})")
                    chosen[k] = vals
                lists = [chosen.get(a, [d]) for a, _, d in self.axes]
                out.extend(tuple(c) for c in itertools.product(*lists))
            else:
                c = self.by_name(part)
                if c is None:
                    raise VariantError(
                        f"--variant {spec!r}: unknown variant '{part}' (known: all, default, "
                        f"{', '.join(self.name(c) for c in self.all())}, or axis=variant pairs)")
                out.append(c)
        seen, uniq = set(), []
        for c in out:
            if c not in seen:
                seen.add(c)
                uniq.append(c)
        if not uniq:
            raise VariantError(f"--variant {spec!r} names no variant")
        return uniq


def load_axes(bzl_path):
    """AXES from a variants.bzl file, evaluated as a literal (ast)."""
    with open(bzl_path) as f:
        tree = ast.parse(f.read(), filename=bzl_path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "AXES" for t in node.targets):
            try:
                axes = ast.literal_eval(node.value)
            except ValueError as e:
                raise VariantError(f"{bzl_path}: AXES is not a literal: {e}")
            return [(a, list(vs), d) for a, vs, d in axes]
    raise VariantError(f"{bzl_path}: no AXES assignment")


def load_matrix(root):
    return Matrix(load_axes(os.path.join(root, "variants", "variants.bzl")))
