package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/specdefault"
)

func writeConfig(t testing.TB, raw []byte) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadSpecErrorsNameTheField(t *testing.T) {
	base, _ := json.Marshal(specdefault.Spec())
	for _, c := range []struct{ raw, want string }{
		{`{`, "malformed JSON"},
		{`{"ociVersion": 1}`, "ociVersion: expected string"},
		{"{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\"user\": {\"uid\": -1}}}", "process.user.uid"},
		{"{\n  \"ociVersion\": \"1.0.0\",\n  \"hostname\": tru}", "malformed JSON at line 3"},
		{`{"ociVersion": "1.0.0", "process": {"args": "sh"}}`, "process.args: expected array, got a JSON string"},
		{`{"ociVersion": "0.9.0"}`, "ociVersion"},
		{`{"ociVersion": "1.2.0", "root": {"path": "rootfs"}}`, "linux: invalid argument"},
		{strings.Replace(string(base), `"cwd":"/"`, `"cwd":""`, 1), "process.cwd"},
		{strings.Replace(string(base), `"type":"pid"`, `"type":"pids"`, 1), "linux.namespaces[0].type"},
	} {
		_, _, err := LoadSpec(writeConfig(t, []byte(c.raw)))
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("config %.60q: want an invalid-argument error naming %q, got %v", c.raw, c.want, err)
		}
	}
	if _, _, err := LoadSpec(writeConfig(t, base)); err != nil {
		t.Errorf("the default spec is refused: %v", err)
	}
}

func TestValidateSysctl(t *testing.T) {
	ns := namespaces{specs.NetworkNamespace: "", specs.IPCNamespace: "", specs.UTSNamespace: ""}
	for _, ok := range []string{"net.ipv4.ip_forward", "kernel.shmmax", "fs.mqueue.msg_max", "kernel.hostname", "net/ipv4/ping_group_range"} {
		if err := validateSysctl(ok, ns); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"vm.swappiness", "kernel.pid_max", "../../etc", "", "/net/x"} {
		if err := validateSysctl(bad, ns); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
	if err := validateSysctl("net.ipv4.ip_forward", namespaces{}); err == nil {
		t.Error("a net sysctl without a network namespace was accepted")
	}
}

// FuzzLoadSpec: no config.json makes the parser and validator panic, and every refusal is an
// invalid-argument error.
func FuzzLoadSpec(f *testing.F) {
	base, _ := json.Marshal(specdefault.Spec())
	f.Add(base)
	f.Add([]byte(`{"ociVersion":"1.0.0"}`))
	f.Add([]byte(`{"ociVersion":"1.2.0","root":{"path":"/"},"linux":{"namespaces":[{"type":"pid"}],"sysctl":{"net.x":"1"}},"mounts":[{"destination":"/x","type":"bind","options":["rbind","rro"]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dir := writeConfig(t, raw)
		_, _, err := LoadSpec(dir)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error that is not invalid input: %v", err)
		}
	})
}
