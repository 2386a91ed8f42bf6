package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// maxTag keeps tags within nft's comment limit (128 bytes with its terminating NUL).
const maxTag = 127

// OwnerTag names the attachment (network, container ID, interface) that a piece of kernel state
// belongs to: it is written as the comment of nftables set elements and as the alias of links, so
// that DEL and GC find what an attachment left behind without the runtime's cached ADD result.
// Network names, container IDs and interface names cannot contain spaces, so spaces separate the
// parts. A tag too long for nft keeps the network name in clear and hashes the rest.
func OwnerTag(network, containerID, ifname string) string {
	t := network + " " + containerID + " " + ifname
	if len(t) <= maxTag {
		return t
	}
	sum := sha256.Sum256([]byte(t))
	h := "#" + hex.EncodeToString(sum[:12])
	if len(network)+1+len(h) > maxTag {
		network = network[:maxTag-1-len(h)]
	}
	return network + " " + h
}

// TagNetwork returns the network part of a tag made by OwnerTag, and false for foreign strings.
func TagNetwork(tag string) (string, bool) {
	n, rest, ok := strings.Cut(tag, " ")
	if !ok || rest == "" {
		return "", false
	}
	return n, true
}

// Valid is the set of tags of a GC request's still-valid attachments.
type Valid map[string]bool

// ValidTags builds the set of tags of the attachments a GC request says are still valid.
func ValidTags(network string, atts []types.GCAttachment) Valid {
	v := make(Valid, len(atts))
	for _, a := range atts {
		v[OwnerTag(network, a.ContainerID, a.IfName)] = true
	}
	return v
}

// Stale reports whether tag belongs to network and is not among the valid attachments.
func (v Valid) Stale(network, tag string) bool {
	n, ok := TagNetwork(tag)
	if !ok {
		return false
	}
	if len(network) > maxTag-26 {
		// a long network name may be truncated in hashed tags
		if !strings.HasPrefix(network, n) {
			return false
		}
	} else if n != network {
		return false
	}
	return !v[tag]
}
