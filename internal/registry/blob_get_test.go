package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// A blob large enough to be copied rather than sent with sendfile to a loopback client comes back
// whole, and in part for a Range, with the right headers.
func TestLargeBlobGetOverLoopback(t *testing.T) {
	off := false
	s, err := New(context.Background(), Config{Root: filepath.Join(t.TempDir(), "root"), Log: LogConfig{AccessLog: &off}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	data := make([]byte, 3<<20+12345)
	_, _ = rand.Read(data)
	d := digest.FromBytes(data)
	if _, err := s.Store().PutBlob(context.Background(), "big/blob", d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	get := func(rng string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v2/big/blob/blobs/"+string(d), nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, b := get("")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) || resp.ContentLength != int64(len(data)) {
		t.Fatalf("GET: status %d, %d bytes (Content-Length %d), equal %v; want 200 and the %d bytes",
			resp.StatusCode, len(b), resp.ContentLength, bytes.Equal(b, data), len(data))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != string(d) {
		t.Errorf("Docker-Content-Digest %q, want %q", got, d)
	}
	resp, b = get("bytes=1000-2099999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[1000:2100000]) {
		t.Fatalf("GET range: status %d, %d bytes, equal %v; want 206 and bytes 1000-2099999",
			resp.StatusCode, len(b), bytes.Equal(b, data[1000:2100000]))
	}
}
