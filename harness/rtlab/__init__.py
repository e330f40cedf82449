"""rtlab: the harness that runs workloads over the variant matrix (see harness/README.md)."""
