package signals

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"9": unix.SIGKILL, "15": unix.SIGTERM, "KILL": unix.SIGKILL, "SIGKILL": unix.SIGKILL, "term": unix.SIGTERM,
		"SIGUSR1": unix.SIGUSR1, "HUP": unix.SIGHUP, "RTMIN": 34, "RTMIN+3": 37, "SIGRTMAX-1": 63, "64": 64,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "-1", "FOO", "SIGFOO", "RTMIN-1", "RTMAX+1", "RTMIN+x"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"9", "KILL", "SIGRTMIN+3", "rtmax-2", "", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := Parse(s)
		if err == nil && (sig <= 0 || sig > 64) {
			t.Fatalf("Parse(%q) = %d", s, sig)
		}
	})
}
