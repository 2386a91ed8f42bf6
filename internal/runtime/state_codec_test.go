package runtime

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func fullRecord() *record {
	timeout := 5
	return &record{
		Version: stateVersion, ID: "c1", Bundle: "/b \"q\"", Rootfs: "/b/rootfs", Owner: "root",
		Created: time.Date(2026, 11, 25, 21, 30, 1, 123456789, time.UTC),
		Pid:     42, PidStart: 123456789012, Creating: true,
		Cgroups: map[string]string{"memory": "/sys/fs/cgroup/memory/berth/c1", "": "/sys/fs/cgroup/unified/berth/c1"},
		Systemd: true, NoPivot: true,
		Annotations: map[string]string{"a": "1", "é\n": "\u2028"},
		Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}},
		Poststart:   []specs.Hook{{Path: "/bin/true", Args: []string{"true", "x"}, Env: []string{"A=b"}, Timeout: &timeout}},
		Poststop:    []specs.Hook{{Path: "/bin/false"}},
		Process:     json.RawMessage(`{"args":["sh"],"cwd":"/"}`),
		Seccomp:     &seccompRecord{Filter: []byte{1, 2, 3, 4, 5, 6, 7, 8, 255}, Flags: 2, Notify: true, ListenerPath: "/run/l.sock", Metadata: "m"},
		Spec:        json.RawMessage(`{"ociVersion":"1.2.0"}`),
	}
}

// TestRecordCodecMatchesEncodingJSON: the hand-written state file codec and encoding/json read
// each other's output to the same record.
func TestRecordCodecMatchesEncodingJSON(t *testing.T) {
	for _, rec := range []*record{fullRecord(), {Version: stateVersion, ID: "min", Created: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), Spec: json.RawMessage(`{}`)}} {
		ours := encodeRecord(rec)
		var viaJSON record
		if err := json.Unmarshal(ours, &viaJSON); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", ours, err)
		}
		if !reflect.DeepEqual(&viaJSON, rec) {
			t.Errorf("encodeRecord then encoding/json:\n%+v\nwant\n%+v", viaJSON, *rec)
		}
		theirs, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRecord(theirs)
		if err != nil {
			t.Fatalf("decodeRecord(%s): %v", theirs, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("encoding/json then decodeRecord:\n%+v\nwant\n%+v", *got, *rec)
		}
	}
	for _, bad := range []string{`{"version":"1"}`, `{"created":"yesterday"}`, `{"seccomp":{"filter":"!!"}}`, `{"pid":1} x`, `nope`} {
		if _, err := decodeRecord([]byte(bad)); err == nil {
			t.Errorf("decodeRecord(%s) accepted it", bad)
		}
	}
}

func TestEncodeStateMatchesEncodingJSON(t *testing.T) {
	for _, st := range []specs.State{
		{Version: specs.Version, ID: "c", Status: specs.StateRunning, Pid: 9, Bundle: "/b", Annotations: map[string]string{"k": "v", "a": "\x01"}},
		{Version: specs.Version, ID: "c", Status: specs.StateStopped, Bundle: "/b"},
	} {
		var got specs.State
		if err := json.Unmarshal(encodeState(&st), &got); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(st)
		var wantState specs.State
		_ = json.Unmarshal(want, &wantState)
		if !reflect.DeepEqual(got, wantState) {
			t.Errorf("encodeState: %+v, want %+v", got, wantState)
		}
	}
}

func TestRawMember(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1,"process":{"x":[1,2]},"b":2}`, `{"x":[1,2]}`},
		{`{"Process":{"y":1}}`, `{"y":1}`},
		{`{"process":{"a":1},"process":{"b":2}}`, `{"b":2}`},
		{`{"process":null}`, ``},
		{`{"other":1}`, ``},
		{`[1]`, ``},
	} {
		if got := string(rawMember([]byte(c.in), "process")); got != c.want {
			t.Errorf("rawMember(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}
