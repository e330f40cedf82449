package measure

import "math"

// Histogram is the HdrHistogram layout of harness/histogram.h: values in
// [lowest, highest] with sigfigs significant digits; values above highest
// are clamped and counted as saturated. Same JSON as the C++ one.
type Histogram struct {
	lowest, highest                  int64
	sigfigs                          int
	unitMagnitude                    int
	subBucketHalfCountMagnitude      int
	subBucketCount, subBucketHalfCnt int
	subBucketMask                    int64
	counts                           []uint64
	total, saturated                 uint64
	min, max                         int64
	sum                              float64
}

func NewHistogram(lowest, highest int64, sigfigs int) *Histogram {
	if lowest < 1 || highest < 2*lowest || sigfigs < 1 || sigfigs > 5 {
		panic("NewHistogram: need 1 <= lowest, 2*lowest <= highest, 1 <= sigfigs <= 5")
	}
	h := &Histogram{lowest: lowest, highest: highest, sigfigs: sigfigs, min: math.MaxInt64}
	largest := int64(2)
	for i := 0; i < sigfigs; i++ {
		largest *= 10
	}
	sbcm := int(math.Ceil(math.Log2(float64(largest))))
	if sbcm < 1 {
		sbcm = 1
	}
	h.subBucketHalfCountMagnitude = sbcm - 1
	h.unitMagnitude = int(math.Floor(math.Log2(float64(lowest))))
	h.subBucketCount = 1 << (h.subBucketHalfCountMagnitude + 1)
	h.subBucketHalfCnt = h.subBucketCount / 2
	h.subBucketMask = int64(h.subBucketCount-1) << h.unitMagnitude
	smallest := int64(h.subBucketCount) << h.unitMagnitude
	buckets := 1
	for smallest <= highest {
		if smallest > math.MaxInt64/2 {
			buckets++
			break
		}
		smallest <<= 1
		buckets++
	}
	h.counts = make([]uint64, (buckets+1)*h.subBucketHalfCnt)
	return h
}

func clz64(x uint64) int {
	n := 0
	for i := 63; i >= 0; i-- {
		if x&(1<<uint(i)) != 0 {
			return n
		}
		n++
	}
	return 64
}

func (h *Histogram) bucketIndex(v int64) int {
	pow2ceiling := 64 - clz64(uint64(v|h.subBucketMask))
	return pow2ceiling - h.unitMagnitude - (h.subBucketHalfCountMagnitude + 1)
}

func (h *Histogram) countsIndex(v int64) int {
	bi := h.bucketIndex(v)
	sbi := int(v >> uint(bi+h.unitMagnitude))
	return ((bi + 1) << h.subBucketHalfCountMagnitude) + (sbi - h.subBucketHalfCnt)
}

func (h *Histogram) valueFromIndex(i int) int64 {
	bi := (i >> h.subBucketHalfCountMagnitude) - 1
	sbi := (i & (h.subBucketHalfCnt - 1)) + h.subBucketHalfCnt
	if bi < 0 {
		sbi -= h.subBucketHalfCnt
		bi = 0
	}
	return int64(sbi) << uint(bi+h.unitMagnitude)
}

func (h *Histogram) highestEquivalent(v int64) int64 {
	bi := h.bucketIndex(v)
	sbi := int(v >> uint(bi+h.unitMagnitude))
	lo := int64(sbi) << uint(bi+h.unitMagnitude)
	adj := bi
	if sbi >= h.subBucketCount {
		adj = bi + 1
	}
	return lo + (int64(1) << uint(h.unitMagnitude+adj)) - 1
}

// Record adds one value (not safe for concurrent use).
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	if v < 0 {
		v = 0
	}
	if v > h.highest {
		v = h.highest
		h.saturated += n
	}
	h.counts[h.countsIndex(v)] += n
	h.total += n
	h.sum += float64(v) * float64(n)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *Histogram) Count() uint64 { return h.total }

func (h *Histogram) Percentile(p float64) int64 {
	if h.total == 0 {
		return 0
	}
	if p <= 0 {
		return h.min
	}
	if p > 100 {
		p = 100
	}
	want := uint64(math.Round(p / 100 * float64(h.total)))
	if want < 1 {
		want = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			v := h.highestEquivalent(h.valueFromIndex(i))
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}

// JSON returns the record form (see harness/README.md).
func (h *Histogram) JSON() map[string]interface{} {
	mn, mean := int64(0), 0.0
	if h.total > 0 {
		mn = h.min
		mean = h.sum / float64(h.total)
	}
	buckets := [][3]int64{}
	for i, c := range h.counts {
		if c != 0 {
			lo := h.valueFromIndex(i)
			buckets = append(buckets, [3]int64{lo, h.highestEquivalent(lo), int64(c)})
		}
	}
	return map[string]interface{}{
		"layout": "hdr", "lowest": h.lowest, "highest": h.highest, "sigfigs": h.sigfigs,
		"count": h.total, "saturated": h.saturated, "min": mn, "max": h.max, "mean": mean,
		"p50": h.Percentile(50), "p90": h.Percentile(90), "p99": h.Percentile(99),
		"p999": h.Percentile(99.9), "buckets": buckets,
	}
}
