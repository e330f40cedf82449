module rtlab/workloads/alloc_storm

go 1.19

require rtlab/harness/go v0.0.0

replace rtlab/harness/go => ../../../harness/go
