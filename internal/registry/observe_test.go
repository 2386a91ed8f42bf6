package registry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// The hand-written access log line decodes to what slog's JSON handler writes for the same
// request, escapes included.
func TestAccessJSONMatchesSlog(t *testing.T) {
	paths := []string{
		"/v2/library/app/manifests/v1",
		"/v2/a\"b\\c/blobs/x",
		"/v2/ctl\x01\x1f\t\n\r/x",
		"/v2/bad\xffutf8/x",
		"/v2/sep\u2028\u2029/x",
		"/v2/ünïcode/<&>",
	}
	for _, p := range paths {
		for _, d := range []time.Duration{0, 999 * time.Nanosecond, 1234567 * time.Nanosecond, 42 * time.Second} {
			r := httptest.NewRequest("GET", "http://registry/", nil)
			r.URL.Path = p
			r.RemoteAddr = "127.0.0.1:4242"
			rec := &recorder{status: 201, n: 12345}
			now := time.Date(2025, 11, 25, 22, 4, 5, 123456789, time.UTC)

			var want bytes.Buffer
			h := slog.NewJSONHandler(&want, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					a.Value = slog.TimeValue(now)
				}
				return a
			}})
			s := &Server{access: slog.New(h)}
			s.accessLog(r, kindManifest, rec, "alice\"", d)
			got := appendAccessJSON(nil, now, r, kindManifest, rec, "alice\"", d)

			var a, b map[string]any
			if err := json.Unmarshal(want.Bytes(), &a); err != nil {
				t.Fatalf("slog line %q: %v", want.Bytes(), err)
			}
			if err := json.Unmarshal(got, &b); err != nil {
				t.Fatalf("hand-written line %q: %v", got, err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("path %q, %v:\n got %s\nwant %s", p, d, got, want.Bytes())
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("path %q, %v: bytes differ:\n got %s\nwant %s", p, d, got, want.Bytes())
			}
		}
	}
}
