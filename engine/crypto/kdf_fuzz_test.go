package crypto_test

import (
	"encoding/json"
	"testing"

	"github.com/mbackup/mbackup/engine/crypto"
)

const fuzzPassword = "fuzz password"

// maxKDFMemory is what opening a repository may cost at most, whatever a
// key file says: scrypt needs 128·N·r bytes.
const maxKDFMemory = 1 << 30

// FuzzUnwrap feeds key files (JSON) to Unwrap. A damaged or hostile key
// file must yield an error, never a panic, an invalid key, or a key
// derivation that needs more than maxKDFMemory.
func FuzzUnwrap(f *testing.F) {
	master, err := crypto.NewRandomKey()
	if err != nil {
		f.Fatal(err)
	}
	cheap := crypto.KDFParams{N: 1 << 10, R: 8, P: 1}
	for _, meta := range [][]byte{nil, []byte(`{"host":"appliance-1"}`)} {
		w, err := crypto.Wrap(master, fuzzPassword, meta, cheap)
		if err != nil {
			f.Fatal(err)
		}
		js, err := json.Marshal(w)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js, fuzzPassword)
		f.Add(js, "wrong password")
	}
	f.Add([]byte(`{"kdf":"scrypt","cost":{"N":4194304,"r":32,"p":16},"salt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","data":""}`), fuzzPassword)
	f.Add([]byte(`{"kdf":"argon2","cost":{"N":2,"r":1,"p":1}}`), "")
	f.Fuzz(func(t *testing.T, js []byte, password string) {
		var w crypto.WrappedKey
		if json.Unmarshal(js, &w) != nil {
			return
		}
		if w.Cost.Validate() == nil {
			if mem := 128 * int64(w.Cost.N) * int64(w.Cost.R); mem > maxKDFMemory {
				t.Fatalf("Validate accepts %+v, which needs %d MiB", w.Cost, mem>>20)
			}
			if int64(w.Cost.N)*int64(w.Cost.R) > 1<<13 {
				return // valid but too slow to derive thousands of times a second
			}
		}
		key, _, err := w.Unwrap(password)
		if err != nil {
			return
		}
		if !key.Valid() {
			t.Fatal("Unwrap returned an unusable key without an error")
		}
	})
}
