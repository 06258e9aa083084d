package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Floor is the smallest limit the governor sets: below it, more frequent
// collections would cost CPU for little memory.
const Floor = 64 << 20

// interval is how often the governor looks for a finished collection.
const interval = 100 * time.Millisecond

// Limit returns the soft memory limit for a live heap of live bytes:
// percent above it, at least Floor. A negative percent means no limit.
func Limit(live uint64, percent int) int64 {
	if percent < 0 {
		return math.MaxInt64
	}
	goal := live + live*uint64(percent)/100
	if goal > math.MaxInt64 {
		return math.MaxInt64
	}
	return max(Floor, int64(goal))
}

// Run governs the memory limit, percent above the live heap, until ctx
// ends, then removes it. It reads the runtime's metrics, which stops
// nothing, so it costs next to no CPU.
func Run(ctx context.Context, percent int) {
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(samples)
		debug.SetMemoryLimit(Limit(samples[1].Value.Uint64(), percent))
	}
	defer debug.SetMemoryLimit(math.MaxInt64)
	set()
	var cycles uint64
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			metrics.Read(samples[:1])
			if c := samples[0].Value.Uint64(); c != cycles {
				cycles = c
				set()
			}
		}
	}
}
