// Package nft holds what berth's CNI plugins share for their nftables tables: declaring a table
// (sets and base chains with their fixed rules) idempotently inside the same transaction that adds
// an attachment's set elements, finding and removing the elements an attachment owns by their
// comment (cni.OwnerTag), and small builders for the expressions the plugins' rules use.
//
// Per-attachment state lives only in set and map elements, never in per-container chains or rules:
// an ADD or DEL is one netlink transaction of a few elements, whatever the number of pods. The
// package talks to the kernel through github.com/google/nftables; it never runs nft or iptables.
package nft
