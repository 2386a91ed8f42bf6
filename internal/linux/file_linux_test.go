package linux

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("read back %q, %v", b, err)
	}
	big := strings.Repeat("x", 10000)
	_ = os.WriteFile(p, []byte(big), 0o644)
	if b, err := ReadFile(p); err != nil || string(b) != big {
		t.Fatalf("large read: %d bytes, %v", len(b), err)
	}
	if b, err := ReadFile("/proc/self/status"); err != nil || !strings.Contains(string(b), "Name:") {
		t.Fatalf("procfs read: %v", err)
	}
	err = WriteFile(filepath.Join(t.TempDir(), "missing"), []byte("x"))
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "open" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
