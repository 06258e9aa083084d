package when

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// ErrNoSnapshots is returned by Select for an empty list.
var ErrNoSnapshots = errors.New("there are no snapshots yet")

// NoMatchError is returned by Select when every item is newer than the
// instant asked for.
type NoMatchError struct {
	At       time.Time // the instant asked for
	Oldest   time.Time // the oldest item's time, in At's location
	OldestID string
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("no snapshot at or before %s; the oldest is %s from %s",
		e.At.Format(timeFormat), shortID(e.OldestID), e.Oldest.Format(timeFormat))
}

// shortID abbreviates a hex snapshot ID the way listings show it.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Select returns the newest of items taken at or before at (any item for
// at.Latest), by timeOf; of items with equal times the one with the greater
// idOf counts as newer. It returns ErrNoSnapshots for an empty list and a
// *NoMatchError when all items are newer than at.T.
func Select[T any](items []T, timeOf func(T) time.Time, idOf func(T) string, at Instant) (T, error) {
	var zero T
	if len(items) == 0 {
		return zero, ErrNoSnapshots
	}
	// compare orders by time, then by ID, oldest first.
	compare := func(a, b T) int {
		if c := timeOf(a).Compare(timeOf(b)); c != 0 {
			return c
		}
		return cmp.Compare(idOf(a), idOf(b))
	}
	best, oldest := -1, 0
	for i, it := range items {
		if compare(it, items[oldest]) < 0 {
			oldest = i
		}
		if !at.Latest && timeOf(it).After(at.T) {
			continue
		}
		if best < 0 || compare(it, items[best]) > 0 {
			best = i
		}
	}
	if best < 0 {
		return zero, &NoMatchError{
			At:       at.T,
			Oldest:   timeOf(items[oldest]).In(at.T.Location()),
			OldestID: idOf(items[oldest]),
		}
	}
	return items[best], nil
}
