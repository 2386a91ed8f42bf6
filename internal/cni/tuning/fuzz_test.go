package tuning

import (
	"strings"
	"testing"
)

// FuzzSysctlKey: whatever key a configuration names, an accepted one stays inside net/ of
// /proc/sys.
func FuzzSysctlKey(f *testing.F) {
	for _, k := range []string{"net.core.somaxconn", "net.ipv4.conf.IFNAME.arp_filter", "net/ipv6/conf/eth0/accept_dad", "kernel.panic", "net..x", "net.ipv4.conf.../../x"} {
		f.Add(k, "eth0")
	}
	f.Fuzz(func(t *testing.T, key, ifname string) {
		k, err := sysctlKey(key, ifname)
		if err != nil {
			return
		}
		if !strings.HasPrefix(k, "net/") || strings.Contains(k, "..") {
			t.Fatalf("key %q (ifname %q) accepted as %q", key, ifname, k)
		}
	})
}
