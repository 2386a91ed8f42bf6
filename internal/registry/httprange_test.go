package registry

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		h             string
		size          int64
		start, n      int64
		ok, unsatisfy bool
	}{
		{"bytes=0-9", 100, 0, 10, true, false},
		{"bytes= 5 - 9 ", 100, 5, 5, true, false},
		{"bytes=90-", 100, 90, 10, true, false},
		{"bytes=-10", 100, 90, 10, true, false},
		{"bytes=-1000", 100, 0, 100, true, false},
		{"bytes=50-1000", 100, 50, 50, true, false},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=-5", 0, 0, 0, false, true},
		{"bytes=0-0", 0, 0, 0, false, true},
		{"bytes=9-5", 100, 0, 0, false, true},
		{"bytes=a-b", 100, 0, 0, false, true},
		{"bytes=5", 100, 0, 0, false, true},
		{"bytes=0-1,3-4", 100, 0, 0, false, false},
		{"pages=0-1", 100, 0, 0, false, false},
		{"", 100, 0, 0, false, false},
		{"bytes=0-9999999999999999999", 100, 0, 0, false, true},
	} {
		start, n, ok, unsat := parseRange(c.h, c.size)
		if ok != c.ok || unsat != c.unsatisfy || (ok && (start != c.start || n != c.n)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, %v", c.h, c.size, start, n, ok, unsat, c.start, c.n, c.ok, c.unsatisfy)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		h        string
		start, n int64
		ok       bool
	}{
		{"0-9", 0, 10, true},
		{"bytes 10-19/100", 10, 10, true},
		{"bytes=10-19", 10, 10, true},
		{"10-19/*", 10, 10, true},
		{" 7-7 ", 7, 1, true},
		{"9-5", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-", 0, 0, false},
		{"+1-2", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"0-1234567890123456789", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, n, ok := parseContentRange(c.h)
		if ok != c.ok || (ok && (start != c.start || n != c.n)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", c.h, start, n, ok, c.start, c.n, c.ok)
		}
	}
}

// FuzzParseRange: whatever range is served lies inside the blob and is not empty, a header
// without the bytes unit is ignored, and a served range written back parses to itself.
func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-9", int64(100))
	f.Add("bytes=-5", int64(3))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1) // blob sizes are never negative
		}
		start, n, ok, unsat := parseRange(h, size)
		if ok && unsat {
			t.Fatalf("parseRange(%q, %d): both served and unsatisfiable", h, size)
		}
		if !strings.HasPrefix(h, "bytes=") && (ok || unsat) {
			t.Fatalf("parseRange(%q, %d): not a bytes range, yet ok=%v unsatisfiable=%v", h, size, ok, unsat)
		}
		if !ok {
			return
		}
		if start < 0 || n < 1 || start > size-n {
			t.Fatalf("parseRange(%q, %d) = [%d, +%d): outside the blob", h, size, start, n)
		}
		if start+n-1 >= 1e18 {
			return // beyond the 18 digits the parser reads (888 PiB)
		}
		again := "bytes=" + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(start+n-1, 10)
		if s2, n2, ok2, _ := parseRange(again, size); !ok2 || s2 != start || n2 != n {
			t.Fatalf("parseRange(%q) = %d +%d, its own form %q gives %d +%d %v", h, start, n, again, s2, n2, ok2)
		}
	})
}

var plainContentRange = regexp.MustCompile(`^([0-9]{1,18})-([0-9]{1,18})$`)

// FuzzParseContentRange: an accepted chunk range is non-empty and starts at or after 0; for the
// plain "<start>-<end>" form the result is what strconv reads.
func FuzzParseContentRange(f *testing.F) {
	f.Add("0-9")
	f.Add("bytes 10-19/20")
	f.Fuzz(func(t *testing.T, h string) {
		start, n, ok := parseContentRange(h)
		if ok && (start < 0 || n < 1 || start+n-1 < start) {
			t.Fatalf("parseContentRange(%q) = %d +%d", h, start, n)
		}
		if m := plainContentRange.FindStringSubmatch(h); m != nil {
			a, _ := strconv.ParseInt(m[1], 10, 64)
			b, _ := strconv.ParseInt(m[2], 10, 64)
			if want := a <= b; ok != want || (ok && (start != a || n != b-a+1)) {
				t.Fatalf("parseContentRange(%q) = %d +%d %v; strconv reads %d-%d", h, start, n, ok, a, b)
			}
		}
	})
}
