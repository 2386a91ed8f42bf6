package specjson

import (
	"encoding/json"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestAppendProcessMatchesEncodingJSON: AppendProcess writes the bytes encoding/json writes, for
// processes with every member set, with none set, and as read from the test documents.
func TestAppendProcessMatchesEncodingJSON(t *testing.T) {
	umask, adj := uint32(0o22), -500
	full := &specs.Process{
		Terminal:    true,
		ConsoleSize: &specs.Box{Height: 24, Width: 80},
		User:        specs.User{UID: 1000, GID: 1001, Umask: &umask, AdditionalGids: []uint32{5, 6}, Username: "u"},
		Args:        []string{"/bin/sh", "-c", "echo \"hi\"\n\ttab é"},
		CommandLine: "cmd",
		Env:         []string{"PATH=/bin", "X="},
		Cwd:         "/work",
		Capabilities: &specs.LinuxCapabilities{
			Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL", "CAP_CHOWN"}, Inheritable: []string{"CAP_CHOWN"},
			Permitted: []string{"CAP_KILL"}, Ambient: []string{"CAP_NET_RAW"},
		},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 40, Soft: 1024}, {Type: "RLIMIT_CORE"}},
		NoNewPrivileges: true,
		ApparmorProfile: "profile",
		OOMScoreAdj:     &adj,
		Scheduler: &specs.Scheduler{Policy: specs.SchedDeadline, Nice: -3, Priority: 2,
			Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagReclaim}, Runtime: 1, Deadline: 2, Period: 3},
		SelinuxLabel:    "system_u:system_r:container_t:s0",
		IOPriority:      &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4},
		ExecCPUAffinity: &specs.CPUAffinity{Initial: "0-1", Final: "1"},
	}
	zero := 0
	cases := map[string]*specs.Process{
		"full":  full,
		"empty": {},
		"sparse": {
			User: specs.User{AdditionalGids: []uint32{}}, Args: []string{}, Capabilities: &specs.LinuxCapabilities{},
			OOMScoreAdj: &zero, Scheduler: &specs.Scheduler{}, IOPriority: &specs.LinuxIOPriority{},
			ExecCPUAffinity: &specs.CPUAffinity{Final: "0"},
		},
		"nil": nil,
	}
	for _, name := range []string{"exec-process.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		cases[name] = &p
	}
	for _, name := range []string{"full-linux.json", "runc-spec.json", "crun-spec.json", "containerd-cri.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if s.Process == nil {
			t.Fatalf("%s has no process", name)
		}
		cases[name] = s.Process
	}
	for name, p := range cases {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendProcess(nil, p); string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}
