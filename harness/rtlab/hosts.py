"""Which machines measured a database's cells; refusing to mix CPU models.

Every run stores the environment it ran in (runner.environment: host name,
CPU model, cores, ...). A matrix spread over a cluster's nodes can land on
different CPU models without anyone noticing, and a ratio between cells
measured on two models compares machines, not variants. So a report (and
a comparison of databases) first groups the measured cells (successful,
non-warm-up runs, as the report uses them) by CPU model and refuses when
there is more than one, naming the cells outside the largest group and the
cells measured on several models. Runs whose environment has no CPU model
form their own group: an unknown model is not known to be the same one.
"""
import json

from .runner import cell_label

UNKNOWN = "unknown CPU model"
LISTED = 12  # cells named per group before "and N more"


class MixedHostsError(Exception):
    pass


def measured_cells(db):
    """{cell label: {cpu model: sorted host names}} over db's measured runs."""
    out = {}
    for r in db.con.execute(
            "SELECT DISTINCT e.cpu_model, e.hostname, c.workload, c.variant, c.gomaxprocs, c.params_json, "
            f"{db.cell_env_columns()} FROM runs r JOIN cells c USING (cell_id) JOIN environment e USING (env_id)"
            " WHERE r.status = 'ok' AND r.warmup = 0"):
        label = cell_label(r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])
        hosts = out.setdefault(label, {}).setdefault(r[0] or UNKNOWN, set())
        hosts.add(r[1] or "?")
    return {label: {m: sorted(h) for m, h in models.items()} for label, models in out.items()}


def _names(labels):
    labels = sorted(labels)
    more = len(labels) - LISTED
    return ", ".join(labels[:LISTED]) + (f", and {more} more" if more > 0 else "")


def mixed_models(dbs):
    """None when every measured cell of the databases comes from one CPU
    model; otherwise the message that says which cells differ. With more
    than one database each label is prefixed by its database's path."""
    cells = {}
    for db in dbs:
        for label, models in measured_cells(db).items():
            cells[f"{db.path}: {label}" if len(dbs) > 1 else label] = models
    by_model = {}
    for label, models in cells.items():
        for m, hosts in models.items():
            g = by_model.setdefault(m, {"cells": set(), "hosts": set()})
            g["cells"].add(label)
            g["hosts"].update(hosts)
    if len(by_model) <= 1:
        return None
    order = sorted(by_model, key=lambda m: (-len(by_model[m]["cells"]), m))
    lines = [f"cells measured on {len(by_model)} different CPU models:"]
    for i, m in enumerate(order):
        g = by_model[m]
        hosts = ", ".join(sorted(g["hosts"]))
        line = f"  {m!r} (host{'s' if len(g['hosts']) > 1 else ''} {hosts}): {len(g['cells'])} cells"
        if i > 0:
            line += ": " + _names(g["cells"])
        lines.append(line)
    several = [label for label, models in cells.items() if len(models) > 1]
    if several:
        lines.append(f"  measured on several models: {_names(several)}")
    lines.append("figures from different CPU models are not comparable: rerun those cells on one model, "
                 "or pass --allow-mixed-hosts")
    return "\n".join(lines)


def check(dbs, allow=False):
    """Raises MixedHostsError when the databases mix CPU models, unless
    allow; then returns the message (None when they do not mix)."""
    msg = mixed_models(dbs)
    if msg and not allow:
        raise MixedHostsError(msg)
    return msg
