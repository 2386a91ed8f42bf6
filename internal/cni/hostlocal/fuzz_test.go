package hostlocal

import (
	"testing"
)

// FuzzParse feeds arbitrary configurations and CNI_ARGS to host-local's parser: it must not panic,
// and whatever it accepts must be a usable configuration.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/24"}]]}}`), "")
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.10","rangeEnd":"10.1.0.20","gateway":"10.1.0.254"}],[{"subnet":"fd00::/64"}]],"reserved":["10.1.0.12","10.1.0.16/30"],"routes":[{"dst":"0.0.0.0/0"}]}}`), "IP=10.1.0.15")
	f.Add([]byte(`{"cniVersion":"0.3.1","name":"n","ipam":{"type":"host-local","subnet":"192.168.0.0/30"}}`), "IgnoreUnknown=1;K8S_POD_NAME=x")
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"ipRanges":[[{"subnet":"10.9.0.0/16"}]],"ips":["10.9.1.1/16"]},"ipam":{"type":"host-local"}}`), "")
	f.Add([]byte(`{"name":"n","ipam":{"ranges":[[{"subnet":"::/0"}]]}}`), "IP=")
	f.Fuzz(func(t *testing.T, stdin []byte, args string) {
		c, _, err := parse(stdin, args)
		if err != nil {
			return
		}
		if len(c.Sets) == 0 {
			t.Fatal("accepted a configuration without ranges")
		}
		for _, set := range c.Sets {
			for _, p := range set {
				if !p.prefix.Contains(p.start) || !p.prefix.Contains(p.end) || p.start.Compare(p.end) > 0 {
					t.Fatalf("pool %v: start %v end %v", p.prefix, p.start, p.end)
				}
				if !p.prefix.Contains(p.gateway) {
					t.Fatalf("pool %v: gateway %v outside", p.prefix, p.gateway)
				}
				_ = c.usable(p, p.start)
			}
		}
	})
}
