package engine_test

// Benchmarks of the save and load pipelines, for issue 7 ("mbackup ahead of
// restic, kopia and borg"). They report MB/s through b.SetBytes, so
//
//	go test ./engine -run '^$' -bench . -benchtime 3x -cpuprofile cpu.out
//
// prints throughput per case and writes a CPU profile of the whole run
// (`go tool pprof -top engine.test cpu.out`). Use -bench 'SaveStream/local'
// and similar to profile one case at a time. No benchmark asserts a timing.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/mem"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
)

// benchStreamSize is the length of each benchmark stream: long enough for
// a few packs and many chunks, short enough for -benchtime 3x to finish fast.
const benchStreamSize = 64 << 20

// benchOptions keeps key derivation cheap; everything else is the default a
// real repository gets (workers = GOMAXPROCS, 4 uploaders).
func benchOptions() engine.Options {
	return engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}}
}

// benchBackends are the storages the save and load benchmarks run on: mem
// isolates the CPU cost, local adds real file writes with fsync.
var benchBackends = []struct {
	name string
	open func(b *testing.B) backend.Backend
}{
	{"mem", func(*testing.B) backend.Backend { return mem.New() }},
	{"local", func(b *testing.B) backend.Backend {
		be, err := local.Open(b.TempDir())
		if err != nil {
			b.Fatalf("open local backend: %v", err)
		}
		return be
	}},
}

// benchInputs are the kinds of stream the benchmarks save.
var benchInputs = []struct {
	name string
	gen  func(seed uint64, n int) []byte
}{
	{"random", benchRandom},
	{"sql", benchSQL},
}

// benchRandom returns n incompressible bytes (media files, encrypted data).
func benchRandom(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6d626163))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	return b[:n]
}

// benchSQL returns n bytes shaped like the COPY section of a Moodle log
// table in a pg_dump: tab-separated rows with increasing ids and times,
// repeated vocabulary and a few random numbers. zstd's default level
// compresses it about 4 to 6 times, like real dumps.
func benchSQL(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x73716c))
	events := []string{`\\core\\event\\course_viewed`, `\\mod_forum\\event\\discussion_viewed`,
		`\\core\\event\\user_loggedin`, `\\mod_quiz\\event\\attempt_submitted`, `\\mod_resource\\event\\course_module_viewed`}
	components := []string{"core", "mod_forum", "mod_quiz", "mod_resource", "mod_assign"}
	actions := []string{"viewed", "created", "submitted", "loggedin", "updated"}
	var buf bytes.Buffer
	buf.Grow(n + 512)
	t := int64(1_700_000_000)
	for id := 1; buf.Len() < n; id++ {
		t += int64(rng.IntN(20))
		e := rng.IntN(len(events))
		buf.WriteString(strconv.Itoa(id))
		buf.WriteByte('\t')
		buf.WriteString(events[e])
		buf.WriteByte('\t')
		buf.WriteString(components[e])
		buf.WriteByte('\t')
		buf.WriteString(actions[e])
		buf.WriteString("\tcourse\tr\t2\t")
		buf.WriteString(strconv.Itoa(rng.IntN(5000)))
		buf.WriteString("\t50\t")
		buf.WriteString(strconv.Itoa(rng.IntN(400) + 2))
		buf.WriteString("\t0\t")
		buf.WriteString(strconv.Itoa(rng.IntN(8000) + 2))
		buf.WriteString("\t0\t\\N\t0\tN;\t")
		buf.WriteString(strconv.FormatInt(t, 10))
		fmt.Fprintf(&buf, "\tweb\t10.%d.%d.%d\t\\N\n", rng.IntN(256), rng.IntN(256), rng.IntN(256))
	}
	return buf.Bytes()[:n]
}

// benchRepo creates a repository on a fresh backend with the default
// configuration (chunk and pack sizes as `mbackup init` makes them).
func benchRepo(b *testing.B, open func(*testing.B) backend.Backend) *engine.Repository {
	b.Helper()
	r, err := engine.Init(context.Background(), open(b), "benchmark password", engine.InitOptions{}, benchOptions())
	if err != nil {
		b.Fatalf("init repository: %v", err)
	}
	return r
}

// benchSave saves data and flushes, as one backup of one stream would.
func benchSave(b *testing.B, r *engine.Repository, data []byte) ([]blob.ID, engine.StreamStats) {
	b.Helper()
	ctx := context.Background()
	ids, st, err := r.SaveStream(ctx, bytes.NewReader(data), nil)
	if err != nil {
		b.Fatalf("save stream: %v", err)
	}
	if err := r.Flush(ctx); err != nil {
		b.Fatalf("flush: %v", err)
	}
	return ids, st
}

// BenchmarkSaveStream measures SaveStream plus the Flush that makes the
// data durable, per backend and kind of input:
//
//   - random, sql: every chunk is new (a fresh repository per iteration), so
//     chunking, hashing, compression, encryption and pack writes all count;
//   - dedup-random, dedup-sql: the stream is already stored, so only
//     chunking, hashing and index lookups count (an unchanged database
//     dump, night after night).
//
// It reports MB/s of stream and stored-bytes/input-byte (the compression
// the repository achieved).
func BenchmarkSaveStream(b *testing.B) {
	for _, be := range benchBackends {
		for _, in := range benchInputs {
			data := in.gen(1, benchStreamSize)
			b.Run(be.name+"/"+in.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				var stored int64
				for b.Loop() {
					b.StopTimer()
					r := benchRepo(b, be.open)
					b.StartTimer()
					_, st := benchSave(b, r, data)
					b.StopTimer()
					stored = st.Stored
					if err := r.Close(); err != nil {
						b.Fatalf("close: %v", err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(stored)/float64(len(data)), "stored/byte")
			})
			b.Run(be.name+"/dedup-"+in.name, func(b *testing.B) {
				r := benchRepo(b, be.open)
				defer r.Close()
				benchSave(b, r, data)
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					_, st := benchSave(b, r, data)
					if st.NewBlobs != 0 {
						b.Fatalf("dedup pass stored %d new blobs", st.NewBlobs)
					}
				}
			})
		}
	}
}

// BenchmarkLoad measures restore-like reading of a stored 64 MiB stream:
// "blob" loads each blob in order with LoadBlob (one ranged read, decrypt,
// decompress, verify at a time), "reader" streams them through a
// ContentReader prefetching 2×GOMAXPROCS blobs, as restore does.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	for _, be := range benchBackends {
		for _, in := range benchInputs {
			data := in.gen(2, benchStreamSize)
			b.Run(be.name+"/"+in.name, func(b *testing.B) {
				r := benchRepo(b, be.open)
				defer r.Close()
				ids, _ := benchSave(b, r, data)
				b.Run("blob", func(b *testing.B) {
					b.SetBytes(int64(len(data)))
					buf := make([]byte, 0, engine.DefaultMaxChunk)
					for b.Loop() {
						n := 0
						for _, id := range ids {
							out, err := r.LoadBlob(ctx, id, buf)
							if err != nil {
								b.Fatal(err)
							}
							n += len(out)
							buf = out[:0]
						}
						if n != len(data) {
							b.Fatalf("loaded %d bytes, want %d", n, len(data))
						}
					}
				})
				b.Run("reader", func(b *testing.B) {
					b.SetBytes(int64(len(data)))
					for b.Loop() {
						cr := r.NewContentReader(ctx, ids, 2*runtime.GOMAXPROCS(0))
						n, err := io.Copy(io.Discard, cr)
						cr.Close()
						if err != nil {
							b.Fatal(err)
						}
						if n != int64(len(data)) {
							b.Fatalf("read %d bytes, want %d", n, len(data))
						}
					}
				})
			})
		}
	}
}

// BenchmarkIndexMemory loads index files describing 1M blobs (64 packs of
// 16,384 blobs each, about what 1 TiB of unique data makes) into a fresh
// repository handle and reports the in-memory index's cost per blob: the
// engine's own estimate (IndexStats.MemoryBytes / Blobs, "bytes/blob") and
// the Go heap actually retained ("heap-bytes/blob"). ns/op is the time to
// load the index, which every backup and restore pays at start.
func BenchmarkIndexMemory(b *testing.B) {
	const (
		blobs   = 1 << 20
		perPack = 1 << 14
	)
	ctx := context.Background()
	be := mem.New()
	r := benchRepo(b, func(*testing.B) backend.Backend { return be })
	rng := rand.New(rand.NewPCG(3, 3))
	for p := 0; p < blobs/perPack; p++ {
		var pb index.PackBlobs
		fillID(rng, &pb.ID)
		var off uint32
		for range perPack {
			bl := pack.Blob{Type: blob.Data, Offset: off, Length: 600 << 10, RawLength: 1 << 20, Compressed: true}
			fillID(rng, &bl.ID)
			off += bl.Length
			pb.Blobs = append(pb.Blobs, bl)
		}
		f := index.File{Packs: []index.PackBlobs{pb}}
		if _, err := r.SaveUnpacked(ctx, backend.IndexFile, f.Encode()); err != nil {
			b.Fatalf("save index file: %v", err)
		}
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}

	var st engine.IndexStats
	var heap float64
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := engine.Open(ctx, be, "benchmark password", benchOptions())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := r.LoadIndex(ctx); err != nil {
			b.Fatalf("load index: %v", err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		st = r.IndexStats()
		heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		runtime.KeepAlive(r)
		_ = r.Close()
		b.StartTimer()
	}
	if st.Blobs != blobs {
		b.Fatalf("index holds %d blobs, want %d", st.Blobs, blobs)
	}
	b.ReportMetric(float64(st.MemoryBytes)/float64(st.Blobs), "bytes/blob")
	b.ReportMetric(heap/float64(st.Blobs), "heap-bytes/blob")
}

func fillID(rng *rand.Rand, id *blob.ID) {
	for i := 0; i < len(id); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
}

// BenchmarkPrimitives measures the per-byte stages of the save pipeline one
// by one on a single goroutine, so the SaveStream figures can be read as a
// sum: chunking (Rabin, single-threaded in SaveStream), blob IDs (keyed
// SHA-256), zstd at the engine's settings, blob sealing (AES-256-GCM) and
// the pack ID (SHA-256 of the finished pack).
func BenchmarkPrimitives(b *testing.B) {
	r := benchRepo(b, func(*testing.B) backend.Backend { return mem.New() })
	defer r.Close()
	key := r.Key()
	for _, in := range benchInputs {
		data := in.gen(4, benchStreamSize)
		chunk := data[:1<<20]
		b.Run("chunker/"+in.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			c := r.Chunker(bytes.NewReader(data))
			buf := make([]byte, 0, engine.DefaultMaxChunk)
			for b.Loop() {
				r.ResetChunker(c, bytes.NewReader(data))
				for {
					ch, err := c.Next(buf[:0])
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					buf = ch.Data
				}
			}
		})
		b.Run("blobid/"+in.name, func(b *testing.B) {
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				key.BlobID(chunk)
			}
		})
		b.Run("zstd/"+in.name, func(b *testing.B) {
			// The options Repository.initEncoders uses for level auto (SpeedDefault).
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			out := make([]byte, 0, len(chunk)+len(chunk)/8)
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				out = enc.EncodeAll(chunk, out[:0])
			}
			b.ReportMetric(float64(len(out))/float64(len(chunk)), "ratio")
		})
		b.Run("seal/"+in.name, func(b *testing.B) {
			id := key.BlobID(chunk)
			out := make([]byte, 0, len(chunk)+crypto.Overhead)
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				var err error
				if out, err = key.SealBlob(out[:0], chunk, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("packid", func(b *testing.B) {
		p := benchRandom(5, 16<<20)
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			blob.Hash(p)
		}
	})
}
