package bridge

import (
	"fmt"
	"net"

	"github.com/berth-dev/berth/internal/cni"
)

// VlanTrunk is a VLAN ID or range of IDs that a port carries tagged.
type VlanTrunk struct {
	MinID *int `json:"minID,omitempty"`
	MaxID *int `json:"maxID,omitempty"`
	ID    *int `json:"id,omitempty"`
}

// NetConf is the bridge plugin's configuration; field names follow the reference plugin so that
// existing configurations work unchanged.
type NetConf struct {
	cni.Conf
	BrName                    string       `json:"bridge"`
	IsGW                      bool         `json:"isGateway"`
	IsDefaultGW               bool         `json:"isDefaultGateway"`
	ForceAddress              bool         `json:"forceAddress"`
	IPMasq                    bool         `json:"ipMasq"`
	IPMasqBackend             *string      `json:"ipMasqBackend,omitempty"`
	MTU                       int          `json:"mtu"`
	HairpinMode               bool         `json:"hairpinMode"`
	PromiscMode               bool         `json:"promiscMode"`
	Vlan                      int          `json:"vlan"`
	VlanTrunk                 []*VlanTrunk `json:"vlanTrunk,omitempty"`
	PreserveDefaultVlan       bool         `json:"preserveDefaultVlan"`
	MacSpoofChk               bool         `json:"macspoofchk,omitempty"`
	EnableDad                 bool         `json:"enabledad,omitempty"`
	DisableContainerInterface bool         `json:"disableContainerInterface,omitempty"`
	PortIsolation             bool         `json:"portIsolation,omitempty"`
	// NFTable names berth's nftables tables for this network (inet for ipMasq, bridge for
	// macspoofchk); tests give each run its own.
	NFTable string `json:"nftTable,omitempty"`
	// SyncDel makes DEL delete the veth pair itself instead of leaving it to a detached helper.
	SyncDel bool `json:"syncDel,omitempty"`

	Args struct {
		Cni struct {
			Mac string `json:"mac,omitempty"`
		} `json:"cni,omitempty"`
	} `json:"args,omitempty"`
	RuntimeConfig struct {
		Mac string `json:"mac,omitempty"`
	} `json:"runtimeConfig,omitempty"`

	mac   net.HardwareAddr
	vlans []int
}

// DefaultBridge is the bridge used when the configuration names none.
const DefaultBridge = "cni0"

// DefaultTable is the name of berth's bridge tables unless nftTable says otherwise.
const DefaultTable = "berth-cni-bridge"

func (n *NetConf) validate(cniArgs string) error {
	if n.BrName == "" {
		n.BrName = DefaultBridge
	}
	if len(n.BrName) > 15 {
		return fmt.Errorf("bridge name %q is longer than 15 bytes: %w", n.BrName, cni.ErrInvalidConfig)
	}
	if n.NFTable == "" {
		n.NFTable = DefaultTable
	}
	if n.IsDefaultGW {
		n.IsGW = true
	}
	if n.MTU < 0 || n.MTU > 65535 {
		return fmt.Errorf("mtu %d out of range: %w", n.MTU, cni.ErrInvalidConfig)
	}
	if n.Vlan < 0 || n.Vlan > 4094 {
		return fmt.Errorf("vlan %d out of range 0-4094: %w", n.Vlan, cni.ErrInvalidConfig)
	}
	if n.IPMasqBackend != nil && *n.IPMasqBackend != "nftables" && *n.IPMasqBackend != "" {
		return fmt.Errorf("ipMasqBackend %q: berth masquerades with nftables only: %w", *n.IPMasqBackend, cni.ErrUnsupportedField)
	}
	for i, t := range n.VlanTrunk {
		switch {
		case t.ID != nil:
			if *t.ID < 1 || *t.ID > 4094 {
				return fmt.Errorf("vlanTrunk[%d].id %d out of range 1-4094: %w", i, *t.ID, cni.ErrInvalidConfig)
			}
			n.vlans = append(n.vlans, *t.ID)
		case t.MinID != nil && t.MaxID != nil:
			if *t.MinID < 1 || *t.MaxID > 4094 || *t.MinID > *t.MaxID {
				return fmt.Errorf("vlanTrunk[%d] range %d-%d invalid: %w", i, *t.MinID, *t.MaxID, cni.ErrInvalidConfig)
			}
			for v := *t.MinID; v <= *t.MaxID; v++ {
				n.vlans = append(n.vlans, v)
			}
		default:
			return fmt.Errorf("vlanTrunk[%d] needs id or minID and maxID: %w", i, cni.ErrInvalidConfig)
		}
	}
	if n.Vlan != 0 && len(n.vlans) > 0 {
		return fmt.Errorf("vlan and vlanTrunk cannot both be set: %w", cni.ErrInvalidConfig)
	}
	// The container MAC: runtimeConfig (the mac capability) wins over args, args over CNI_ARGS.
	kv, err := cni.ParseArgs(cniArgs)
	if err != nil {
		return err
	}
	mac := kv["MAC"]
	if n.Args.Cni.Mac != "" {
		mac = n.Args.Cni.Mac
	}
	if n.RuntimeConfig.Mac != "" {
		mac = n.RuntimeConfig.Mac
	}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil || len(hw) != 6 {
			return fmt.Errorf("mac %q is not an Ethernet address: %w", mac, cni.ErrInvalidConfig)
		}
		n.mac = hw
	}
	return nil
}

func (n *NetConf) vlanFiltering() bool { return n.Vlan != 0 || len(n.vlans) > 0 }
