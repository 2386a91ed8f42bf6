package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawHeader is a ustar header block built by hand: archive/tar writes no sparse entries.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", 0o644))
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 0))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		s := fmt.Sprintf("%d%s", n, rec)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// sparseTar is a PAX 1.0 sparse entry: realSize bytes of logical size, data only at offset.
func sparseTar(name string, realSize, offset int64, data string) []byte {
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(realSize))
	var out []byte
	out = append(out, rawHeader("PaxHeaders/"+name, 'x', int64(len(pax)))...)
	out = append(out, pad([]byte(pax))...)
	sparseMap := pad([]byte(fmt.Sprintf("1\n%d\n%d\n", offset, len(data))))
	body := append(sparseMap, pad([]byte(data))...)
	out = append(out, rawHeader("GNUSparseFile.0/"+name, '0', int64(len(sparseMap)+len(data)))...)
	out = append(out, body...)
	return append(out, make([]byte, 1024)...)
}

func TestSparseEntryLeavesHoles(t *testing.T) {
	root := t.TempDir()
	const size = 1 << 30
	res, err := Apply(context.Background(), root, bytes.NewReader(sparseTar("big", size, size/2, "hello")), unprivileged())
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 1 {
		t.Fatalf("applied %d entries, want 1", res.Entries)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "big"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Fatalf("size %d, want %d", st.Size, size)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Fatalf("the sparse entry took %d bytes of disk: its holes were written as zeros", used)
	}
	f, err := os.Open(filepath.Join(root, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, 5)
	if _, err := f.ReadAt(got, size/2); err != nil || string(got) != "hello" {
		t.Fatalf("data at the offset: %q, %v", got, err)
	}
}

// A few hundred bytes can claim an exabyte: the context stops the expansion.
func TestSparseBombStopsWithTheContext(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Apply(ctx, root, bytes.NewReader(sparseTar("bomb", 1<<60, 1<<59, "x")), unprivileged())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply of a sparse bomb: %v, want the context's deadline", err)
	}
}
