module rtlab/harness/go

go 1.19
