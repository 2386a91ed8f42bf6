package bridge

import (
	"context"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

// FuzzConfig: the bridge configuration decoder and validator never panic, and what they accept
// has a bridge name an interface can carry and VLAN IDs the kernel takes.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"n","type":"bridge","bridge":"br0","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local"}}`), "")
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","type":"bridge","vlan":100,"mtu":1400,"hairpinMode":true,"macspoofchk":true,"runtimeConfig":{"mac":"02:00:00:00:00:01"}}`), "MAC=02:00:00:00:00:02")
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","type":"bridge","vlanTrunk":[{"id":5},{"minID":10,"maxID":20}],"preserveDefaultVlan":true}`), "")
	f.Add([]byte(`{"cniVersion":"0.4.0","name":"n","type":"bridge","ipMasqBackend":"iptables","prevResult":{"ips":[{"version":"4","address":"10.0.0.2/24"}]}}`), "")
	f.Fuzz(func(t *testing.T, stdin []byte, args string) {
		n, err := load(context.Background(), &skel.CmdArgs{StdinData: stdin, Args: args})
		if err != nil {
			return
		}
		if n.BrName == "" || len(n.BrName) > 15 {
			t.Fatalf("accepted bridge name %q", n.BrName)
		}
		if n.Vlan < 0 || n.Vlan > 4094 {
			t.Fatalf("accepted vlan %d", n.Vlan)
		}
		for _, v := range n.vlans {
			if v < 1 || v > 4094 {
				t.Fatalf("accepted trunk vlan %d", v)
			}
		}
		if _, err := n.PrevResult100(); err != nil {
			return
		}
	})
}
