// Package sysctl reads and writes kernel parameters under /proc/sys for the calling thread's
// namespaces. Callers that need another network namespace's values run it inside netns.NS.Do,
// because /proc/sys/net resolves the namespace of the thread that opens the file.
package sysctl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Path turns a key in dotted ("net.ipv4.ip_forward") or slashed form into its /proc/sys path.
// Dots inside an interface name cannot be told apart in dotted form; such keys must use slashes.
func Path(key string) (string, error) {
	if strings.Contains(key, "..") || strings.HasPrefix(key, "/") || key == "" {
		return "", fmt.Errorf("sysctl key %q: not a relative key", key)
	}
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	p := filepath.Join("/proc/sys", key)
	if !strings.HasPrefix(p, "/proc/sys/") {
		return "", fmt.Errorf("sysctl key %q escapes /proc/sys", key)
	}
	return p, nil
}

// Get returns a parameter's value without the trailing newline.
func Get(key string) (string, error) {
	p, err := Path(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", p, err)
	}
	return string(bytes.TrimRight(b, "\n")), nil
}

// Set writes a parameter.
func Set(key, value string) error {
	p, err := Path(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s=%q: %w", p, value, err)
	}
	return nil
}

// Ensure writes value unless the parameter already holds it, sparing a write (and, for
// forwarding switches, the kernel's reconfiguration of every interface) on the hot path.
func Ensure(key, value string) error {
	if v, err := Get(key); err == nil && v == value {
		return nil
	}
	return Set(key, value)
}
