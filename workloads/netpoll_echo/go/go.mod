module rtlab/workloads/netpoll_echo

go 1.19
