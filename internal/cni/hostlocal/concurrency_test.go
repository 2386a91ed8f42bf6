package hostlocal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/cni"
)

// TestMain lets the test binary act as the host-local plugin in child processes, so that the
// concurrency test runs real processes contending for the real file lock.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_TEST_AS_HOSTLOCAL") == "1" {
		os.Exit(cni.Main(context.Background(), "host-local", Funcs(), os.Stdout))
	}
	os.Exit(m.Run())
}

func runPlugin(t *testing.T, cmd, id string, stdin []byte) ([]byte, error) {
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "BERTH_TEST_AS_HOSTLOCAL=1", "CNI_COMMAND="+cmd, "CNI_CONTAINERID="+id,
		"CNI_NETNS=/proc/self/ns/net", "CNI_IFNAME=eth0", "CNI_PATH=/nonexistent", "CNI_NETNS_OVERRIDE=1")
	c.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s %s", cmd, id, err, out.String(), errb.String())
	}
	return out.Bytes(), nil
}

// 100 plugin processes allocating at once from one subnet get 100 distinct addresses, and 100
// DELs at once free them all.
func TestConcurrentProcesses(t *testing.T) {
	const n = 100
	dir := t.TempDir()
	stdin := conf(t, dir, `"ranges":[[{"subnet":"10.44.0.0/24"}]]`)
	var wg sync.WaitGroup
	results := make([][]byte, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = runPlugin(t, "ADD", fmt.Sprintf("ctr%03d", i), stdin)
		}(i)
	}
	wg.Wait()
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("ADD %d: %v", i, errs[i])
		}
		var r struct {
			IPs []struct {
				Address string `json:"address"`
			} `json:"ips"`
		}
		if err := json.Unmarshal(results[i], &r); err != nil || len(r.IPs) != 1 {
			t.Fatalf("ADD %d result %q: %v", i, results[i], err)
		}
		if j, dup := seen[r.IPs[0].Address]; dup {
			t.Fatalf("ADD %d and %d both got %s", i, j, r.IPs[0].Address)
		}
		seen[r.IPs[0].Address] = i
	}
	if got := countAllocations(t, dir); got != n {
		t.Fatalf("%d allocation files, want %d", got, n)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = runPlugin(t, "DEL", fmt.Sprintf("ctr%03d", i), stdin)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("DEL %d: %v", i, err)
		}
	}
	if got := countAllocations(t, dir); got != 0 {
		t.Fatalf("%d allocations left after all DELs", got)
	}
}

func countAllocations(t *testing.T, dir string) int {
	ents, err := os.ReadDir(filepath.Join(dir, "testnet"))
	if err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			c++
		}
	}
	return c
}
