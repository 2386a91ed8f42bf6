package runtime

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestEncodeInitConfigMatchesEncodingJSON: the hand-written encoder writes the bytes encoding/json
// writes (raw members given compact, as encoding/json would make them), and the decoder reads
// them back to the same config.
func TestEncodeInitConfigMatchesEncodingJSON(t *testing.T) {
	adj := 3
	full := initConfig{
		Mode: modeExec,
		Spec: json.RawMessage(`{"ociVersion":"1.2.0","root":{"path":"rootfs"}}`),
		Process: &specs.Process{Args: []string{"sh", "-c", "echo \"hi\" \u00e9"}, Cwd: "/", User: specs.User{UID: 7, AdditionalGids: []uint32{1, 2}},
			Env: []string{"A=b"}, OOMScoreAdj: &adj, Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}},
		Rootfs:          "/x/rootfs",
		Bundle:          "/x",
		NoPivot:         true,
		NoNewKeyring:    true,
		MountNS:         true,
		MountNSJoined:   true,
		SourceFDs:       map[int]int{0: 7, 3: 9, 10: 12, 2: 8},
		CgroupNS:        true,
		Cgroups:         map[string]string{"memory": "/a/b", "": "/c", "name=systemd": "/d"},
		ConsoleFD:       5,
		FifoDirFD:       6,
		PreserveFDs:     2,
		IDMapFDs:        map[string]int{"/mnt": 11, "/a": 12},
		Hooks:           true,
		SELinux:         true,
		Filter:          []unix.SockFilter{{Code: 0x20, Jt: 1, Jf: 2, K: 0xffffffff}, {Code: 6, K: 0x7fff0000}},
		FilterFlags:     3,
		FilterNotify:    true,
		SeccompFD:       12,
		SeccompMetadata: "meta\n",
		ContainerState:  json.RawMessage(`{"ociVersion":"1.2.0","id":"c","status":"created","pid":4,"bundle":"/x"}`),
		CgroupTasks:     []cgroupTask{{FD: 13, Path: "cpu/tasks"}, {FD: 14, Path: "memory/tasks"}},
	}
	for _, c := range []initConfig{full, {Mode: modeInit, ConsoleFD: -1, FifoDirFD: 4, SeccompFD: -1}} {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got := encodeInitConfig(&c)
		if string(got) != string(want) {
			t.Errorf("encoded\n%s\nwant (encoding/json)\n%s", got, want)
		}
		back, err := decodeInitConfig(got)
		if err != nil {
			t.Fatal(err)
		}
		var ref initConfig
		if err := json.Unmarshal(want, &ref); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*back, ref) {
			t.Errorf("decoded\n%+v\nwant\n%+v", *back, ref)
		}
	}
}

// TestMessageCodecMatchesEncodingJSON: messages are written as encoding/json writes them and read
// as it reads them, unknown members included.
func TestMessageCodecMatchesEncodingJSON(t *testing.T) {
	for _, m := range []message{
		{Type: msgReady},
		{Type: msgPid, Pid: 42},
		{Type: msgError, Error: "open \"x\": no such file\n"},
		{Type: msgWarning, Message: "w", Debug: true},
		{Type: msgAck, State: json.RawMessage(`{"ociVersion":"1.2.0","id":"c","status":"created"}`)},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendMessage(nil, &m); string(got) != string(want) {
			t.Errorf("encoded %s, want %s", got, want)
		}
		back, err := decodeMessage(want)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Errorf("decoded %+v, want %+v", back, m)
		}
	}
	m, err := decodeMessage([]byte(`{"type":"pid","pid":7,"extra":{"a":[1,2]}}`))
	if err != nil || m.Type != msgPid || m.Pid != 7 {
		t.Errorf("with an unknown member: %+v, %v", m, err)
	}
	for _, bad := range []string{`{"type":1}`, `{"pid":"x"}`, `{"type":"a"} x`, `[`, ``} {
		if _, err := decodeMessage([]byte(bad)); err == nil {
			t.Errorf("%q decoded without error", bad)
		}
	}
}
