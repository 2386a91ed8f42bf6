package client

import (
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseChallenges(t *testing.T) {
	cases := []struct {
		in   string
		want []Challenge
	}{
		{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`,
			[]Challenge{{Scheme: "bearer", Params: map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"}}}},
		{`Basic realm="berth registry"`, []Challenge{{Scheme: "basic", Params: map[string]string{"realm": "berth registry"}}}},
		{`basic REALM=x, Bearer realm="y", error="insufficient_scope"`, []Challenge{
			{Scheme: "basic", Params: map[string]string{"realm": "x"}},
			{Scheme: "bearer", Params: map[string]string{"realm": "y", "error": "insufficient_scope"}}}},
		{`Negotiate abc==, Basic realm="a \"quoted\" \\ one"`, []Challenge{
			{Scheme: "negotiate", Token68: "abc=="},
			{Scheme: "basic", Params: map[string]string{"realm": `a "quoted" \ one`}}}},
		{`Bearer`, []Challenge{{Scheme: "bearer"}}},
		{`Bearer , Basic realm=r`, []Challenge{{Scheme: "bearer"}, {Scheme: "basic", Params: map[string]string{"realm": "r"}}}},
		{`Bearer realm = "spaced" , service=s`, []Challenge{{Scheme: "bearer", Params: map[string]string{"realm": "spaced", "service": "s"}}}},
		{``, nil},
		{`=junk`, nil},
		{`Bearer realm="unterminated`, []Challenge{{Scheme: "bearer"}}},
	}
	for _, c := range cases {
		got := ParseChallenges(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseChallenges(%q) =\n  %+v\nwant\n  %+v", c.in, got, c.want)
		}
	}
}

// formatChallenges writes challenges back, quoting every value.
func formatChallenges(chs []Challenge) string {
	var parts []string
	for _, c := range chs {
		s := c.Scheme
		if c.Token68 != "" {
			s += " " + c.Token68
		}
		var keys []string
		for k := range c.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			sep := ", "
			if i == 0 {
				sep = " "
			}
			v := strings.ReplaceAll(strings.ReplaceAll(c.Params[k], `\`, `\\`), `"`, `\"`)
			s += sep + k + `="` + v + `"`
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// FuzzParseChallenges: no panic, and what was parsed writes back to a header that parses the same.
func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`)
	f.Add(`Basic realm="x", Bearer realm=y,error="invalid_token"`)
	f.Add(`Negotiate abc==`)
	f.Fuzz(func(t *testing.T, h string) {
		chs := ParseChallenges(h)
		for _, c := range chs {
			if c.Scheme == "" || c.Scheme != strings.ToLower(c.Scheme) {
				t.Fatalf("bad scheme in %+v", c)
			}
			for k := range c.Params {
				if k == "" {
					t.Fatalf("empty parameter name in %+v", c)
				}
			}
		}
		again := ParseChallenges(formatChallenges(chs))
		if len(chs) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, chs) {
			t.Fatalf("%q → %+v → %q → %+v", h, chs, formatChallenges(chs), again)
		}
	})
}

func TestParseLinks(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:5000/v2/a/tags/list?n=2")
	cases := []struct {
		hdr  []string
		want string
	}{
		{[]string{`</v2/a/tags/list?last=b&n=2>; rel="next"`}, "http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2"},
		{[]string{`<http://x/prev>; rel=prev, </v2/a/tags/list?last=c>; rel="next"; type="application/json"`}, "http://127.0.0.1:5000/v2/a/tags/list?last=c"},
		{[]string{`<http://x/1>; rel="prev"`, `<?last=z>;rel="first next"`}, "http://127.0.0.1:5000/v2/a/tags/list?last=z"},
		{[]string{`</v2/a>; rel="prev"`}, ""},
		{nil, ""},
	}
	for _, c := range cases {
		got, err := nextLink(c.hdr, base)
		if err != nil {
			t.Fatalf("nextLink(%q): %v", c.hdr, err)
		}
		s := ""
		if got != nil {
			s = got.String()
		}
		if s != c.want {
			t.Errorf("nextLink(%q) = %q, want %q", c.hdr, s, c.want)
		}
	}
}

// FuzzParseLinks: no panic, and every link's target and parameters write back to the same links.
func FuzzParseLinks(f *testing.F) {
	f.Add(`</v2/a/tags/list?last=b&n=2>; rel="next"`)
	f.Add(`<http://x/1>; rel=prev; title="a, b", <y>;rel=next`)
	f.Fuzz(func(t *testing.T, h string) {
		links := ParseLinks(h)
		var parts []string
		for _, l := range links {
			if strings.Contains(l.Target, ">") {
				t.Fatalf("target %q contains '>'", l.Target)
			}
			s := "<" + l.Target + ">"
			var keys []string
			for k := range l.Params {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := strings.ReplaceAll(strings.ReplaceAll(l.Params[k], `\`, `\\`), `"`, `\"`)
				s += "; " + k + `="` + v + `"`
			}
			parts = append(parts, s)
		}
		again := ParseLinks(strings.Join(parts, ", "))
		if len(links) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, links) {
			t.Fatalf("%q → %+v → %+v", h, links, again)
		}
		base, _ := url.Parse("http://127.0.0.1/v2/x/tags/list")
		_, _ = nextLink([]string{h}, base)
	})
}

func TestParseRangeEnd(t *testing.T) {
	good := map[string]int64{"0-0": 0, "0-9": 10, "bytes=0-1023": 1024}
	for in, want := range good {
		if got, err := parseRangeEnd(in); err != nil || got != want {
			t.Errorf("parseRangeEnd(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5-9", "0-", "-1", "0-x", "0--1"} {
		if _, err := parseRangeEnd(in); err == nil {
			t.Errorf("parseRangeEnd(%q) accepted", in)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d, ok := retryAfter("3", now); !ok || d != 3*time.Second {
		t.Errorf("retryAfter(3) = %v, %v", d, ok)
	}
	if d, ok := retryAfter(now.Add(7*time.Second).Format(http1123), now); !ok || d != 7*time.Second {
		t.Errorf("retryAfter(date) = %v, %v", d, ok)
	}
	for _, in := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(in, now); ok {
			t.Errorf("retryAfter(%q) accepted", in)
		}
	}
	p := RetryPolicy{MinDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	for n := 1; n < 10; n++ {
		d := p.backoff(n)
		ceil := min(p.MinDelay<<(n-1), p.MaxDelay)
		if d < ceil/2 || d > ceil {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
