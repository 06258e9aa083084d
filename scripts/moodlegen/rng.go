package moodlegen

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// streamKey names one independent PCG stream. Deriving a key per purpose and
// per item (rather than drawing everything from one generator) lets the
// database and the moodledata side regenerate the same file content
// independently, and lets workers generate files in any order.
type streamKey struct{ hi, lo uint64 }

// key derives the stream for (seed, domain, idx...).
func key(seed uint64, domain string, idx ...uint64) streamKey {
	h := fnv.New64a()
	h.Write([]byte(domain))
	d := h.Sum64()
	k := streamKey{hi: mix(seed ^ mix(d)), lo: mix(d + 0x9e3779b97f4a7c15)}
	for _, i := range idx {
		k.lo = mix(k.lo ^ mix(i+0x632be59bd9b4e019))
		k.hi = mix(k.hi + i)
	}
	return k
}

func (k streamKey) rand() *rand.Rand { return rand.New(rand.NewPCG(k.hi, k.lo)) }

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// logNormal draws a size with the given median and σ, clamped to [lo, hi].
func logNormal(r *rand.Rand, median int64, sigma float64, lo, hi int64) int64 {
	v := float64(median) * math.Exp(sigma*r.NormFloat64())
	n := int64(v)
	if v > float64(hi) {
		n = hi
	}
	return min(max(n, lo), hi)
}

// pick returns a uniformly chosen element.
func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// weighted returns the index chosen with the given relative weights.
func weighted(r *rand.Rand, w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := r.IntN(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

// between returns a uniform instant in [from, to] at second resolution.
func between(r *rand.Rand, from, to int64) int64 {
	if to <= from {
		return from
	}
	return from + r.Int64N(to-from+1)
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randString returns n characters from alphabet.
func randString(r *rand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// randHex returns n random hexadecimal digits.
func randHex(r *rand.Rand, n int) string { return randString(r, n, "0123456789abcdef") }

// sample returns k distinct indexes of [0, n) in draw order
// (a partial Fisher–Yates shuffle, so the result depends only on r).
func sample(r *rand.Rand, n, k int) []int {
	k = min(k, n)
	if k <= 0 {
		return nil
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < k; i++ {
		j := i + r.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:k]
}
