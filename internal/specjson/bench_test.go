package specjson

import (
	"encoding/json"
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkUnmarshal decodes each config with this package and with encoding/json, the anchor, and
// prints the ratio of the two measured in this run. It shows the steady state; TestFirstCallCost
// shows the first call in a fresh process, which is what this package is for.
func BenchmarkUnmarshal(b *testing.B) {
	for _, name := range []string{"runc-spec.json", "containerd-cri.json", "full-linux.json"} {
		data := readTestdata(b, name)
		var ours, anchor float64
		b.Run(name+"/specjson", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var s specs.Spec
				if err := Unmarshal(data, &s); err != nil {
					b.Fatal(err)
				}
			}
			ours = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var s specs.Spec
				if err := json.Unmarshal(data, &s); err != nil {
					b.Fatal(err)
				}
			}
			anchor = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		if ours > 0 && anchor > 0 {
			// Printed rather than logged: a parent benchmark's log is only shown with -v.
			fmt.Printf("config: %s\nspecjson-ns/op: %.0f\nencoding-json-ns/op: %.0f\nratio: %.2f\n", name, ours, anchor, ours/anchor)
		}
	}
}
