package runtime

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestDecodeInitConfigMatchesEncodingJSON: what encoding/json encodes (the runtime half writes the same bytes), the
// hand-written decoder reads back as encoding/json would, with every field set.
func TestDecodeInitConfigMatchesEncodingJSON(t *testing.T) {
	uid := uint32(7)
	full := initConfig{
		Mode:            modeExec,
		Spec:            json.RawMessage(`{"ociVersion":"1.2.0","root":{"path":"rootfs"}}`),
		Process:         &specs.Process{Args: []string{"sh", "-c", "echo \"hi\" \u00e9"}, Cwd: "/", User: specs.User{UID: uid, AdditionalGids: []uint32{1, 2}}, Env: []string{"A=b"}},
		Rootfs:          "/x/rootfs",
		Bundle:          "/x",
		NoPivot:         true,
		NoNewKeyring:    true,
		MountNS:         true,
		MountNSJoined:   true,
		SourceFDs:       map[int]int{0: 7, 3: 9},
		CgroupNS:        true,
		Cgroups:         map[string]string{"memory": "/a/b", "": "/c"},
		ConsoleFD:       5,
		FifoDirFD:       6,
		PreserveFDs:     2,
		IDMapFDs:        map[string]int{"/mnt": 11},
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
		body, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var want initConfig
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeInitConfig(body)
		if err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("decoded\n%+v\nwant (encoding/json)\n%+v", *got, want)
		}
	}
}

func TestDecodeInitConfigErrors(t *testing.T) {
	for _, body := range []string{`{"consoleFD":"x"}`, `{"mode":1}`, `{"filter":[{"Code":70000}]}`, `{"sourceFDs":{"a":1}}`, `{"mode":"init"} x`, `[`} {
		if _, err := decodeInitConfig([]byte(body)); err == nil || !strings.Contains(err.Error(), "decode init config") {
			t.Errorf("%s: error %v, want a decode error", body, err)
		}
	}
}
