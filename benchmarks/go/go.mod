module rtlab/benchmarks/go

go 1.19
