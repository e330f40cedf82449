// Go twin of benchmarks/map_bench.cc: the same inserts and lookups of
// int64 keys with Go's map. Run with `go test -bench . ./mapbench` from
// benchmarks/go; each reports ns per insert or lookup as ns/op2.
package mapbench

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

var sizes = []int{1 << 10, 1 << 16, 1 << 20}

// The keys of map_bench.cc: i times an odd constant, shuffled.
func benchKeys(n int, seed int64) []int64 {
	keys := make([]int64, n)
	for i := range keys {
		keys[i] = int64(uint64(i) * 0x9e3779b97f4a7c15)
	}
	rand.New(rand.NewSource(seed)).Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

func BenchmarkMapInsert(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			keys := benchKeys(n, 1)
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				m := make(map[int64]int64)
				for _, k := range keys {
					m[k] = k
				}
			}
			b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(b.N*n), "ns/op2")
		})
	}
}

func BenchmarkMapLookup(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			keys := benchKeys(n, 1)
			m := make(map[int64]int64)
			for _, k := range keys {
				m[k] = k
			}
			keys = benchKeys(n, 2)
			var sum int64
			j := 0
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				sum += m[keys[j]]
				if j++; j == len(keys) {
					j = 0
				}
			}
			b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(b.N), "ns/op2")
			if sum == 1 {
				b.Log(sum)
			}
		})
	}
}
