package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// oracle is the exact quantile of sorted: the sample of rank ceil(q*n).
func oracle(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestHistogramQuantilesMatchSortedOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform 0-10ms": func() time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) },
		"lognormal":      func() time.Duration { return time.Duration(math.Exp(r.NormFloat64()*1.5 + 13)) },
		"bimodal": func() time.Duration {
			return []time.Duration{200 * time.Microsecond, 40 * time.Millisecond}[r.IntN(2)] + time.Duration(r.IntN(1000))
		},
		"tiny values":  func() time.Duration { return time.Duration(r.IntN(300)) },
		"beyond range": func() time.Duration { return time.Duration(r.Int64N(int64(5 * time.Minute))) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			h := NewHistogram()
			samples := make([]time.Duration, 20000)
			for i := range samples {
				samples[i] = gen()
				h.Record(samples[i])
			}
			slices.Sort(samples)
			if h.Count() != int64(len(samples)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(samples))
			}
			if h.Min() != samples[0] || h.Max() != samples[len(samples)-1] {
				t.Errorf("Min, Max = %v, %v; want %v, %v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
				want := oracle(samples, q)
				got := h.Quantile(q)
				// Within the range the answer is the bucket's upper edge:
				// never below the sample, at most 1/128 above it.
				limit := want + want/subCount + 1
				if want >= 1<<(maxShift+subBits+1) {
					limit = h.Max() // the last bucket spans to Max
				}
				if got < want || got > limit {
					t.Errorf("Quantile(%v) = %v, oracle %v (allowed up to %v)", q, got, want, limit)
				}
			}
		})
	}
}

func TestHistogramBucketsAreContiguous(t *testing.T) {
	// Every bucket starts one past where the previous one ends, and
	// bucketOf puts both edges of each bucket back into it.
	for i := 1; i < numBuckets; i++ {
		if bucketLow(i) != bucketHigh(i-1)+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, bucketLow(i), bucketHigh(i-1))
		}
		if i < numBuckets-1 && (bucketOf(bucketLow(i)) != i || bucketOf(bucketHigh(i)) != i) {
			t.Fatalf("bucket %d [%d, %d] maps back to %d, %d", i, bucketLow(i), bucketHigh(i), bucketOf(bucketLow(i)), bucketOf(bucketHigh(i)))
		}
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.99) != 0 || h.Min() != 0 || h.Mean() != 0 || h.Bars() != nil {
		t.Fatalf("empty histogram: q99 %v min %v mean %v bars %v", h.Quantile(0.99), h.Min(), h.Mean(), h.Bars())
	}
	h.Record(-time.Second)
	if h.Count() != 1 || h.Max() != 0 || h.Quantile(1) != 0 {
		t.Fatalf("a negative sample should count as 0: count %d max %v", h.Count(), h.Max())
	}
}

func TestHistogramConcurrentRecordAndMerge(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := a
			if w%2 == 1 {
				h = b
			}
			for i := range 1000 {
				h.Record(time.Duration(w*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	a.Merge(b)
	if a.Count() != 8000 {
		t.Fatalf("merged Count = %d, want 8000", a.Count())
	}
	if a.Min() != 0 || a.Max() != 7999*time.Microsecond {
		t.Fatalf("merged Min, Max = %v, %v", a.Min(), a.Max())
	}
	var sum int64
	for w := range 8 {
		for i := range 1000 {
			sum += int64(time.Duration(w*1000+i) * time.Microsecond)
		}
	}
	if a.Mean() != time.Duration(sum/8000) {
		t.Fatalf("merged Mean = %v, want %v", a.Mean(), time.Duration(sum/8000))
	}
}

func TestHistogramBarsCoverEverySample(t *testing.T) {
	h := NewHistogram()
	for _, d := range []time.Duration{80 * time.Microsecond, 150 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 2 * time.Minute} {
		h.Record(d)
	}
	bars := h.Bars()
	var total int64
	for _, b := range bars {
		total += b.Count
	}
	if total != 5 {
		t.Fatalf("bars hold %d samples, want 5: %+v", total, bars)
	}
	if bars[0].UpTo != 100*time.Microsecond || bars[0].Count != 1 {
		t.Errorf("first bar = %+v, want 1 sample up to 100µs", bars[0])
	}
	last := bars[len(bars)-1]
	if last.LeMS != nil || last.Count != 1 {
		t.Errorf("last bar = %+v, want the open-ended row holding the 2 min sample", last)
	}
	for _, b := range bars {
		if b.UpTo == 5*time.Millisecond && b.Count != 2 {
			t.Errorf("the 5 ms row holds %d, want the two 3 ms samples", b.Count)
		}
	}
}
