package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
)

// Chain is a base chain and its fixed rules.
type Chain struct {
	Chain *nftables.Chain
	Rules [][]expr.Any
}

// Table is the declaration of one of berth's tables.
type Table struct {
	Table  *nftables.Table
	Sets   []*nftables.Set
	Chains []Chain
}

// Conn is a connection to nftables that knows whether it deleted anything.
type Conn struct {
	*nftables.Conn
	ctx     context.Context
	dup     *os.File // a second descriptor of the netlink socket
	deleted bool
}

// Open returns a connection to nftables in the caller's network namespace.
func Open(ctx context.Context) (*Conn, error) {
	c := &Conn{ctx: ctx}
	keep := func(nc *netlink.Conn) error {
		// Keep a second descriptor of the socket for Close (see there).
		rc, err := nc.SyscallConn()
		if err != nil {
			return err
		}
		var derr error
		err = rc.Control(func(fd uintptr) {
			var nfd int
			nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3)
			if derr == nil {
				c.dup = os.NewFile(uintptr(nfd), "nftables")
			}
		})
		if err != nil {
			return err
		}
		return derr
	}
	nc, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(keep))
	if err != nil {
		return nil, fmt.Errorf("nftables netlink socket: %w", err)
	}
	c.Conn = nc
	return c, nil
}

// Close closes the connection. If it deleted set elements, the socket's release would wait for
// the kernel's deferred destruction of them (an RCU grace period): its last descriptor is handed
// to a detached helper (cni.Linger) instead, so that DEL returns without that wait.
func (c *Conn) Close() {
	if c.deleted && c.dup != nil && cni.Linger(c.ctx, c.dup) == nil {
		c.dup.Close()
		c.CloseLasting()
		return
	}
	if c.dup != nil {
		c.dup.Close()
	}
	c.CloseLasting()
}

// Declare queues, on c, the creation of the table, its sets and chains, and the replacement of
// each chain's rules by the declared ones. Creating what exists is a no-op and the chains are
// flushed and refilled in the same transaction, so the result is the same however many processes
// run it at once, and a table left by an older version is brought up to date.
func Declare(c *Conn, t *Table) error {
	c.AddTable(t.Table)
	for _, s := range t.Sets {
		s.Table = t.Table
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("declare set %s: %w", s.Name, err)
		}
	}
	for _, ch := range t.Chains {
		ch.Chain.Table = t.Table
		c.AddChain(ch.Chain)
		c.FlushChain(ch.Chain)
		for _, r := range ch.Rules {
			c.AddRule(&nftables.Rule{Table: t.Table, Chain: ch.Chain, Exprs: r})
		}
	}
	return nil
}

// Ensure queues Declare unless the table is there already, which it checks with one request: for
// the set declared last. The common case (every ADD after the first on a host) then sends only
// its elements, and the kernel rebuilds no chain. A table is declared with its sets, chains and
// rules in one transaction, so a table holding its last set is complete; racing declarers each
// flush and refill the chains, which leaves one copy of the rules. A later version of a plugin
// that changes its rules declares a new set last, so that tables of older versions are
// re-declared (sets added, chains refilled) on their next ADD.
func Ensure(c *Conn, t *Table) error {
	for _, s := range t.Sets {
		s.Table = t.Table
	}
	if len(t.Sets) > 0 {
		_, err := c.GetSetByName(t.Table, t.Sets[len(t.Sets)-1].Name)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOENT) && !strings.Contains(err.Error(), "no such file or directory") {
			return fmt.Errorf("look up set %s of table %s: %w", t.Sets[len(t.Sets)-1].Name, t.Table.Name, err)
		}
	} else if ok, err := Exists(c, t.Table); err != nil || ok {
		return err
	}
	return Declare(c, t)
}

// Exists reports whether the table exists.
func Exists(c *Conn, t *nftables.Table) (bool, error) {
	_, err := c.ListTableOfFamily(t.Name, t.Family)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return false, fmt.Errorf("list table %s: %w", t.Name, err)
}

// Owned lists the elements of the named set whose comment satisfies match. A missing table or
// set has no elements.
func Owned(c *Conn, t *nftables.Table, set string, match func(comment string) bool) (*nftables.Set, []nftables.SetElement, error) {
	// The dump needs only the table and the set's name; asking for the set first would cost a
	// round trip per set.
	s := &nftables.Set{Table: t, Name: set}
	els, err := c.GetSetElements(s)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), "no such file or directory") {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("list elements of %s %s: %w", t.Name, set, err)
	}
	var out []nftables.SetElement
	for _, e := range els {
		if e.IntervalEnd {
			continue
		}
		if match(e.Comment) {
			out = append(out, e)
		}
	}
	return s, out, nil
}

// DeleteOwned removes, in one transaction, the elements of the given sets whose comment
// satisfies match. It is not an error if the table, a set or an element does not exist; an
// element removed by someone else between the listing and the deletion makes it list again.
func DeleteOwned(c *Conn, t *nftables.Table, sets []string, match func(comment string) bool) (int, error) {
	if ok, err := Exists(c, t); err != nil || !ok {
		return 0, err
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		n := 0
		for _, name := range sets {
			s, els, lerr := Owned(c, t, name, match)
			if lerr != nil {
				return 0, lerr
			}
			if len(els) == 0 {
				continue
			}
			if err := c.SetDeleteElements(s, els); err != nil {
				return 0, fmt.Errorf("delete elements of %s %s: %w", t.Name, name, err)
			}
			n += len(els)
		}
		if n == 0 {
			return 0, nil
		}
		if err = c.Flush(); err == nil {
			c.deleted = true
			return n, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			break
		}
	}
	return 0, fmt.Errorf("delete elements from table %s: %w", t.Name, err)
}

// Register numbers: NFT_REG_1 is 16 bytes wide and overlaps the 32-bit registers 8..11; the 32-bit
// registers let concatenations and NAT address/port pairs sit side by side.
const (
	Reg1   = 1
	Reg2   = 2
	Reg4   = 4
	Reg32x = 8 // NFT_REG32_00
)

// IfName pads an interface name to the 16 bytes nftables compares.
func IfName(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

// Addr is an address's bytes (4 for IPv4).
func Addr(a netip.Addr) []byte { return a.Unmap().AsSlice() }

// Port is a port in network byte order, padded to the 4 bytes of a concatenation field.
func Port(p uint16) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, p)
	return b
}

// Pad4 pads b to a multiple of 4 bytes, as fields of a concatenation are.
func Pad4(b []byte) []byte {
	if r := len(b) % 4; r != 0 {
		b = append(b, make([]byte, 4-r)...)
	}
	return b
}

// Concat joins the fields of a concatenated key or value, each padded to 4 bytes.
func Concat(fields ...[]byte) []byte {
	var out []byte
	for _, f := range fields {
		out = append(out, Pad4(append([]byte(nil), f...))...)
	}
	return out
}

// NFProto matches the packet's family in an inet table.
func NFProto(family byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: Reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: Reg1, Data: []byte{family}},
	}
}

// SrcAddr and DstAddr load the network header's source or destination address into reg.
func SrcAddr(v6 bool, reg uint32) expr.Any {
	if v6 {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

// DstAddr: see SrcAddr.
func DstAddr(v6 bool, reg uint32) expr.Any {
	if v6 {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

// Family is the nfproto byte of an address.
func Family(a netip.Addr) byte {
	if a.Unmap().Is4() {
		return unix.NFPROTO_IPV4
	}
	return unix.NFPROTO_IPV6
}

// AddrType is the set datatype of an address family.
func AddrType(v6 bool) nftables.SetDatatype {
	if v6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// Accept, Drop and Return are verdicts.
func Accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

// Drop drops the packet.
func Drop() expr.Any { return &expr.Verdict{Kind: expr.VerdictDrop} }

// Return ends the chain for this packet.
func Return() expr.Any { return &expr.Verdict{Kind: expr.VerdictReturn} }
