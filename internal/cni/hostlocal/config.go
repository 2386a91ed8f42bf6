package hostlocal

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berth-dev/berth/internal/cni"
)

// DefaultDataDir is where allocations live unless the configuration says otherwise.
const DefaultDataDir = "/var/lib/cni/networks"

// Range is one contiguous pool inside a subnet, as the configuration writes it.
type Range struct {
	Subnet     types.IPNet `json:"subnet"`
	RangeStart net.IP      `json:"rangeStart,omitempty"`
	RangeEnd   net.IP      `json:"rangeEnd,omitempty"`
	Gateway    net.IP      `json:"gateway,omitempty"`
}

// RangeSet is a list of ranges of one address family; one address is allocated per range set.
type RangeSet []Range

// IPAMConfig is the "ipam" object of a network configuration.
type IPAMConfig struct {
	Type       string         `json:"type"`
	Routes     []*types.Route `json:"routes"`
	DataDir    string         `json:"dataDir"`
	ResolvConf string         `json:"resolvConf"`
	Ranges     []RangeSet     `json:"ranges"`
	// Reserved addresses or prefixes are never handed out (a berth extension, for addresses
	// that other hosts or services on the subnet own).
	Reserved []string `json:"reserved,omitempty"`

	// The single-range form of older configurations.
	Subnet     types.IPNet `json:"subnet"`
	RangeStart net.IP      `json:"rangeStart,omitempty"`
	RangeEnd   net.IP      `json:"rangeEnd,omitempty"`
	Gateway    net.IP      `json:"gateway,omitempty"`
}

// NetConf is the whole configuration as host-local reads it.
type NetConf struct {
	cni.Conf
	IPAM          *IPAMConfig `json:"ipam"`
	RuntimeConfig struct {
		IPRanges []RangeSet `json:"ipRanges,omitempty"`
		IPs      []string   `json:"ips,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	Args *struct {
		CNI *struct {
			IPs []string `json:"ips,omitempty"`
		} `json:"cni,omitempty"`
	} `json:"args,omitempty"`
}

// pool is a validated range with netip addresses.
type pool struct {
	prefix  netip.Prefix
	start   netip.Addr
	end     netip.Addr
	gateway netip.Addr
}

// Config is a validated host-local configuration.
type Config struct {
	Network    string
	DataDir    string
	Sets       [][]pool
	Routes     []*types.Route
	DNS        types.DNS
	Requested  []netip.Addr
	Reserved   []netip.Prefix
	ResolvConf string
}

// parse reads and validates stdin; args is CNI_ARGS.
func parse(stdin []byte, cniArgs string) (*Config, *NetConf, error) {
	var n NetConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, nil, fmt.Errorf("network configuration: %w: %w", cni.ErrDecode, err)
	}
	if n.IPAM == nil {
		return nil, nil, fmt.Errorf("no \"ipam\" object in the configuration: %w", cni.ErrInvalidConfig)
	}
	ic := n.IPAM
	c := &Config{Network: n.Name, DataDir: ic.DataDir, Routes: ic.Routes, ResolvConf: ic.ResolvConf}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	sets := ic.Ranges
	if len(n.RuntimeConfig.IPRanges) > 0 {
		// the ipRanges capability replaces the configured ranges
		sets = n.RuntimeConfig.IPRanges
	}
	if ic.Subnet.IP != nil {
		if len(sets) > 0 && len(n.RuntimeConfig.IPRanges) == 0 {
			return nil, nil, fmt.Errorf("ipam: both \"subnet\" and \"ranges\" given: %w", cni.ErrInvalidConfig)
		}
		if len(sets) == 0 {
			sets = []RangeSet{{{Subnet: ic.Subnet, RangeStart: ic.RangeStart, RangeEnd: ic.RangeEnd, Gateway: ic.Gateway}}}
		}
	}
	if len(sets) == 0 {
		return nil, nil, fmt.Errorf("ipam: no IP ranges (\"ranges\") configured: %w", cni.ErrInvalidConfig)
	}
	for i, rs := range sets {
		if len(rs) == 0 {
			return nil, nil, fmt.Errorf("ipam: ranges[%d] is empty: %w", i, cni.ErrInvalidConfig)
		}
		var ps []pool
		for j, r := range rs {
			p, err := r.validate()
			if err != nil {
				return nil, nil, fmt.Errorf("ipam: ranges[%d][%d]: %w", i, j, err)
			}
			for k, q := range ps {
				if p.prefix.Addr().Is4() != q.prefix.Addr().Is4() {
					return nil, nil, fmt.Errorf("ipam: ranges[%d] mixes IPv4 and IPv6 (entries %d and %d): %w", i, k, j, cni.ErrInvalidConfig)
				}
				if overlap(p, q) {
					return nil, nil, fmt.Errorf("ipam: ranges[%d][%d] overlaps ranges[%d][%d]: %w", i, j, i, k, cni.ErrInvalidConfig)
				}
			}
			ps = append(ps, p)
		}
		for k, other := range c.Sets {
			for _, p := range ps {
				for _, q := range other {
					if overlap(p, q) {
						return nil, nil, fmt.Errorf("ipam: range set %d overlaps range set %d: %w", i, k, cni.ErrInvalidConfig)
					}
				}
			}
		}
		c.Sets = append(c.Sets, ps)
	}
	for _, s := range ic.Reserved {
		p, err := parsePrefixOrAddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("ipam: reserved %q: %w: %w", s, cni.ErrInvalidConfig, err)
		}
		c.Reserved = append(c.Reserved, p)
	}
	// Requested addresses: the ips capability, args.cni.ips, then CNI_ARGS IP= (comma-separated).
	var req []string
	req = append(req, n.RuntimeConfig.IPs...)
	if n.Args != nil && n.Args.CNI != nil {
		req = append(req, n.Args.CNI.IPs...)
	}
	kv, err := cni.ParseArgs(cniArgs)
	if err != nil {
		return nil, nil, err
	}
	if v := kv["IP"]; v != "" {
		req = append(req, strings.Split(v, ",")...)
	}
	for _, s := range req {
		// a requested address may carry a prefix length ("10.1.2.3/24"); only the address counts
		s, _, _ = strings.Cut(strings.TrimSpace(s), "/")
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("ipam: requested IP %q: %w: %w", s, cni.ErrInvalidConfig, err)
		}
		c.Requested = append(c.Requested, a.Unmap())
	}
	if ic.ResolvConf != "" {
		dns, err := readResolvConf(ic.ResolvConf)
		if err != nil {
			return nil, nil, fmt.Errorf("ipam: resolvConf: %w: %w", cni.ErrIO, err)
		}
		c.DNS = dns
	}
	return c, &n, nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func toAddr(ip net.IP) (netip.Addr, bool) {
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// validate turns a configured range into a pool, filling in the defaults: the range spans the
// subnet without its network and (IPv4) broadcast address, and the gateway is the first address.
func (r Range) validate() (pool, error) {
	if r.Subnet.IP == nil {
		return pool{}, fmt.Errorf("no \"subnet\": %w", cni.ErrInvalidConfig)
	}
	a, ok := toAddr(r.Subnet.IP)
	if !ok {
		return pool{}, fmt.Errorf("subnet %v: %w", r.Subnet.IP, cni.ErrInvalidConfig)
	}
	ones, bits := r.Subnet.Mask.Size()
	if bits == 0 {
		return pool{}, fmt.Errorf("subnet %v has no valid mask: %w", r.Subnet.IP, cni.ErrInvalidConfig)
	}
	if a.Is4() && bits == 128 {
		ones -= 96
	}
	prefix := netip.PrefixFrom(a, ones).Masked()
	if prefix.Bits() < 0 || prefix.Addr().BitLen()-prefix.Bits() < 2 {
		return pool{}, fmt.Errorf("subnet %s is too small to allocate from (at least 4 addresses wanted): %w", prefix, cni.ErrInvalidConfig)
	}
	p := pool{prefix: prefix}
	first := prefix.Addr().Next()
	last := lastAddr(prefix)
	if prefix.Addr().Is4() {
		last = last.Prev() // broadcast
	}
	p.start, p.end = first, last
	if s, ok := toAddr(r.RangeStart); ok {
		if !prefix.Contains(s) || s.Compare(first) < 0 || s.Compare(last) > 0 {
			return pool{}, fmt.Errorf("rangeStart %s is not a usable address of %s: %w", s, prefix, cni.ErrInvalidConfig)
		}
		p.start = s
	}
	if e, ok := toAddr(r.RangeEnd); ok {
		if !prefix.Contains(e) || e.Compare(first) < 0 || e.Compare(last) > 0 {
			return pool{}, fmt.Errorf("rangeEnd %s is not a usable address of %s: %w", e, prefix, cni.ErrInvalidConfig)
		}
		p.end = e
	}
	if p.start.Compare(p.end) > 0 {
		return pool{}, fmt.Errorf("rangeStart %s is after rangeEnd %s: %w", p.start, p.end, cni.ErrInvalidConfig)
	}
	p.gateway = first
	if g, ok := toAddr(r.Gateway); ok {
		if !prefix.Contains(g) {
			return pool{}, fmt.Errorf("gateway %s is outside subnet %s: %w", g, prefix, cni.ErrInvalidConfig)
		}
		p.gateway = g
	}
	return p, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= 0xff >> (p.Bits() - bit)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func overlap(p, q pool) bool {
	return p.prefix.Overlaps(q.prefix) && p.start.Compare(q.end) <= 0 && q.start.Compare(p.end) <= 0
}

func (p pool) contains(a netip.Addr) bool {
	return p.prefix.Contains(a) && a.Compare(p.start) >= 0 && a.Compare(p.end) <= 0
}

func (p pool) ipnet(a netip.Addr) net.IPNet {
	return net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.prefix.Bits(), a.BitLen())}
}
