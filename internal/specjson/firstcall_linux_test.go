package specjson

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// firstCallEnv makes the test binary, re-executed by TestFirstCallCost, time one decoder's first
// call in a fresh process and print the result instead of testing.
const firstCallEnv = "SPECJSON_FIRST_CALL"

// TestFirstCallCost logs what the first decode of a config costs in a fresh process, with this
// package and with encoding/json, which is the cost a runtime pays at every container start (the
// benchmark only shows the steady state). It only logs: timings on a shared machine make poor
// assertions.
func TestFirstCallCost(t *testing.T) {
	if which := os.Getenv(firstCallEnv); which != "" {
		firstCallChild(which)
		return
	}
	if testing.Short() || raceEnabled {
		t.Skip("re-executes the test binary to time it, which -short and -race rule out")
	}
	const runs = 7
	for _, config := range []string{"containerd-cri.json", "runc-spec.json"} {
		for _, decoder := range []string{"specjson", "encoding-json"} {
			var ns, faults, second []int64
			for range runs {
				cmd := exec.Command(os.Args[0], "-test.run=^TestFirstCallCost$")
				cmd.Env = append(os.Environ(), firstCallEnv+"="+decoder+":"+config)
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", decoder, err)
				}
				var n, f, s int64
				if _, err := fmt.Sscanf(string(out), "first-call-ns %d minflt %d second-call-ns %d", &n, &f, &s); err != nil {
					t.Fatalf("%s: output %q: %v", decoder, out, err)
				}
				ns, faults, second = append(ns, n), append(faults, f), append(second, s)
			}
			t.Logf("config: %s decoder: %s first-call: %v minor-faults: %d second-call: %v (medians of %d fresh processes)",
				config, decoder, time.Duration(median(ns)), median(faults), time.Duration(median(second)), runs)
		}
	}
}

func median(xs []int64) int64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func firstCallChild(which string) {
	decoder, config, _ := strings.Cut(which, ":")
	data, err := os.ReadFile("testdata/" + config)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	decode := func(s *specs.Spec) error { return Unmarshal(data, s) }
	if decoder == "encoding-json" {
		decode = func(s *specs.Spec) error { return json.Unmarshal(data, s) }
	}
	var before, after syscall.Rusage
	var s1, s2 specs.Spec
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	err = decode(&s1)
	first := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	start = time.Now()
	err2 := decode(&s2)
	second := time.Since(start)
	if err != nil || err2 != nil {
		fmt.Println(err, err2)
		os.Exit(1)
	}
	fmt.Printf("first-call-ns %d minflt %d second-call-ns %d\n", first.Nanoseconds(), after.Minflt-before.Minflt, second.Nanoseconds())
	os.Exit(0)
}
