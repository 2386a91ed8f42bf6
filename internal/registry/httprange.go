package registry

import "strings"

// parseRange interprets a Range request header against a blob of size bytes. It serves one range
// of the "bytes" unit (what registry clients send: resuming a pull, reading the end of an
// archive). ok means serve [start, start+n); unsatisfiable means answer 416. A header it does not
// understand (another unit, several ranges) is ignored, as RFC 9110 allows: the whole blob is sent.
func parseRange(h string, size int64) (start, n int64, ok, unsatisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return 0, 0, false, false
	}
	spec = strings.TrimSpace(spec)
	if strings.IndexByte(spec, ',') >= 0 {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, true
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		// suffix: the last N bytes
		k, good := parseUint(last)
		if !good || k == 0 {
			return 0, 0, false, true
		}
		if k > size {
			k = size
		}
		if size == 0 {
			return 0, 0, false, true
		}
		return size - k, k, true, false
	}
	a, good := parseUint(first)
	if !good {
		return 0, 0, false, true
	}
	if a >= size {
		return 0, 0, false, true
	}
	if last == "" {
		return a, size - a, true, false
	}
	b, good := parseUint(last)
	if !good || b < a {
		return 0, 0, false, true
	}
	if b >= size {
		b = size - 1
	}
	return a, b - a + 1, true, false
}

// parseContentRange reads the Content-Range of a chunk PATCH: "<start>-<end>", inclusive, as
// the distribution-spec writes it ("bytes " and a "/total" suffix, which some clients add, are
// tolerated). It returns the chunk's start and length.
func parseContentRange(h string) (start, n int64, ok bool) {
	h = strings.TrimSpace(h)
	if rest, found := strings.CutPrefix(h, "bytes "); found {
		h = strings.TrimSpace(rest)
	} else if rest, found := strings.CutPrefix(h, "bytes="); found {
		h = rest
	}
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	first, last, found := strings.Cut(h, "-")
	if !found {
		return 0, 0, false
	}
	a, okA := parseUint(first)
	b, okB := parseUint(last)
	if !okA || !okB || b < a {
		return 0, 0, false
	}
	return a, b - a + 1, true
}

// parseUint parses a decimal number of at most 18 digits (no sign, no overflow).
func parseUint(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
