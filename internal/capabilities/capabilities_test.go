package capabilities

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFromSpec(t *testing.T) {
	s, err := FromSpec(&specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN", "CAP_KILL"},
		Effective: []string{"CAP_KILL"},
		Ambient:   []string{"CAP_NET_BIND_SERVICE"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Bounding != 1<<0|1<<5 || s.Effective != 1<<5 || s.Ambient != 1<<10 || s.Permitted != 0 {
		t.Fatalf("unexpected sets %+v", s)
	}
}

func TestFromSpecRejectsUnknown(t *testing.T) {
	_, err := FromSpec(&specs.LinuxCapabilities{Permitted: []string{"CAP_CHOWN", "CAP_TELEPORT"}})
	if err == nil || !strings.Contains(err.Error(), "process.capabilities.permitted[1]") || !strings.Contains(err.Error(), "CAP_TELEPORT") {
		t.Fatalf("want an error naming the field and the capability, got %v", err)
	}
	if _, err := FromSpec(&specs.LinuxCapabilities{Bounding: []string{"chown"}}); err == nil {
		t.Fatal("lower-case names without the CAP_ prefix are not runtime-spec names")
	}
}

func TestNamesAreNumberedLikeTheKernel(t *testing.T) {
	for name, want := range map[string]int{"CAP_CHOWN": 0, "CAP_SETPCAP": 8, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_READ": 37, "CAP_CHECKPOINT_RESTORE": 40} {
		if got, err := Value(name); err != nil || got != want {
			t.Errorf("Value(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	if len(Supported()) == 0 || len(Known()) != 41 {
		t.Fatalf("Supported %d Known %d", len(Supported()), len(Known()))
	}
}
