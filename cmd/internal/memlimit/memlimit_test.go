package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		live    uint64
		percent int
		want    int64
	}{
		{0, 50, Floor},
		{10 << 20, 50, Floor},
		{42 << 20, 50, Floor}, // a goal of 63 MiB
		{100 << 20, 50, 150 << 20},
		{1 << 30, 100, 2 << 30},
		{100 << 20, 0, 100 << 20},
		{100 << 20, -1, math.MaxInt64},
		{math.MaxUint64 / 2, 100, math.MaxInt64},
	} {
		if got := Limit(tc.live, tc.percent); got != tc.want {
			t.Errorf("Limit(%d, %d) = %d, want %d", tc.live, tc.percent, got, tc.want)
		}
	}
}

// The governor follows the live heap: a large live heap raises the limit
// above it (no collection without pause), and ending Run removes it.
func TestRunFollowsLiveHeap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, 50); close(done) }()
	defer func() { cancel(); <-done }()

	live := make([][]byte, 0, 200)
	for range 200 {
		live = append(live, make([]byte, 1<<20)) // 200 MiB live
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) < 250<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d MiB with 200 MiB live, want about 300 MiB", debug.SetMemoryLimit(-1)>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.KeepAlive(live)

	cancel()
	<-done
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("limit %d after Run ended, want none", l)
	}
}
