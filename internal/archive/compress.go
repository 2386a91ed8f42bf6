package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a layer blob is compressed.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Detect tells the compression of a stream from its first bytes; r must then be read from the
// returned reader, which still holds them.
func Detect(r io.Reader) (Compression, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, fmt.Errorf("read layer header: %w", err)
	}
	return Sniff(head), br, nil
}

// Sniff tells the compression from a blob's first bytes (four are enough).
func Sniff(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// Decompress returns the tar stream inside r, compressed as c. Close releases the decompressor (it
// does not close r).
func Decompress(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Uncompressed:
		return io.NopCloser(r), nil
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case Zstd:
		// One goroutine: the caller already overlaps decompression with writing files, and the
		// decoder's default concurrency costs memory per layer.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("unknown compression %d", c)
}

// DecompressAuto detects the compression of r and decompresses it.
func DecompressAuto(r io.Reader) (io.ReadCloser, error) {
	c, br, err := Detect(r)
	if err != nil {
		return nil, err
	}
	return Decompress(br, c)
}
