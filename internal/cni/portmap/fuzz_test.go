package portmap

import (
	"context"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

// FuzzMappings: configuration, prevResult and portMappings in, map elements out; never a panic,
// and every element has the size its map's key and value types say.
func FuzzMappings(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]},"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.0.0.2/24","interface":0},{"address":"fd00::2/64","interface":0}]}}`))
	f.Add([]byte(`{"cniVersion":"0.3.1","name":"n","type":"portmap","snat":false,"markMasqBit":14,"runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":65535,"protocol":"sctp","hostIP":"::1"}]},"prevResult":{"ips":[{"version":"6","address":"fd00::5/64"}]}}`))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":70000,"containerPort":0}]}}`))
	f.Fuzz(func(t *testing.T, stdin []byte) {
		n, err := load(context.Background(), &skel.CmdArgs{StdinData: stdin})
		if err != nil {
			return
		}
		prev, err := n.PrevResult100()
		if err != nil || prev == nil {
			return
		}
		ents, err := entries(n.RuntimeConfig.PortMaps, podAddrs(prev))
		if err != nil {
			return
		}
		t4 := table(n)
		for _, e := range ents {
			s := set(t4, e.set)
			if uint32(len(e.key)) != s.KeyType.Bytes || uint32(len(e.val)) != s.DataType.Bytes {
				t.Fatalf("%s element key %d value %d bytes, map wants %d and %d", e.set, len(e.key), len(e.val), s.KeyType.Bytes, s.DataType.Bytes)
			}
		}
	})
}
