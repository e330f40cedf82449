// Go twin of workloads/netpoll_echo/server.cc: net.Listen + io.Copy per
// connection, driven by the same load generator (loadgen.cc describes the
// protocol). Go exposes no scheduler counters, so its counters line is
// null. --busy=N starts N goroutines that only compute.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
)

func main() {
	busy := flag.Int("busy", 0, "goroutines that only compute")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netpoll_echo go server: listen:", err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				fmt.Fprintln(os.Stderr, "netpoll_echo go server: accept:", err)
				os.Exit(1)
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	for i := 0; i < *busy; i++ {
		go func() {
			x := 0
			for {
				x++
			}
		}()
	}
	fmt.Printf("ready %s impl=go variant=%s gomaxprocs=%d\n", ln.Addr(), runtime.Version(), runtime.GOMAXPROCS(0))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "end" {
			fmt.Println("null")
			os.Exit(0)
		}
	}
}
