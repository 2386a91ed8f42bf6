package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// BenchmarkCommitUpload is the store's side of a blob push: a 32 MiB body read from a loopback TCP
// connection (as a PATCH body is), hashed, written, synced and linked. Run with
// go test -run '^$' -bench CommitUpload ./internal/registry/storage/
func BenchmarkCommitUpload(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 32<<20)
	_, _ = rand.Read(data)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, bytes.NewReader(data))
			}()
		}
	}()
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		// a new blob each time: the first 8 bytes differ
		i++
		data[0], data[1], data[2], data[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		d := digest.FromBytes(data)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		id, err := s.NewUpload(ctx, "bench/app")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.WriteUpload(ctx, "bench/app", id, 0, int64(len(data)), c); err != nil {
			b.Fatal(err)
		}
		c.Close()
		if _, err := s.CommitUpload(ctx, "bench/app", id, d, -1, 0, nil); err != nil {
			b.Fatal(err)
		}
	}
}
