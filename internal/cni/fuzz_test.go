package cni

import (
	"context"
	"testing"
)

type fuzzConf struct {
	Conf
	Extra map[string]interface{} `json:"extra,omitempty"`
}

// FuzzDecode feeds arbitrary bytes to the configuration decoder every plugin uses, prevResult
// included: it must fail with ErrDecode or succeed, never panic, and a decoded prevResult must
// convert to a 1.x result or fail cleanly.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"n","type":"bridge"}`))
	f.Add([]byte(`{"cniVersion":"0.3.1","name":"n","prevResult":{"ips":[{"version":"4","address":"10.0.0.2/24","gateway":"10.0.0.1","interface":0}],"interfaces":[{"name":"eth0","sandbox":"/x"}]}}`))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"fd00::2/64","interface":7}],"routes":[{"dst":"0.0.0.0/0"}]}}`))
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`))
	f.Add([]byte(`{"cniVersion":"9.9.9","name":"n","prevResult":{"ips":"nope"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c fuzzConf
		ctx := withLog(context.Background(), "fuzz")
		if err := Decode(ctx, b, &c); err != nil {
			return
		}
		if r, err := c.PrevResult100(); err == nil && r != nil {
			for _, ipc := range r.IPs {
				_ = ipc.Address.String()
			}
			if _, err := r.GetAsVersion("0.4.0"); err != nil {
				return
			}
		}
		_ = ValidTags(c.Name, c.ValidAttachments)
	})
}

// FuzzOwnerTag: tags stay within nft's comment limit and keep their network recognisable.
func FuzzOwnerTag(f *testing.F) {
	f.Add("net", "ctr", "eth0")
	f.Add("a-very-long-network-name-that-goes-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "eth0")
	f.Fuzz(func(t *testing.T, network, id, ifname string) {
		tag := OwnerTag(network, id, ifname)
		if len(tag) > maxTag {
			t.Fatalf("tag of %d bytes: %q", len(tag), tag)
		}
		v := ValidTags(network, nil)
		if n, ok := TagNetwork(tag); ok && n == network && !v.Stale(network, tag) {
			t.Fatalf("tag %q of network %q with no valid attachments is not stale", tag, network)
		}
	})
}
