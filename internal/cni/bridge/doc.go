// Package bridge is the bridge plugin: it creates (or reuses) a Linux bridge on the host, a veth
// pair whose host end is a port of the bridge and whose other end is CNI_IFNAME inside the
// container's namespace, configures the addresses and routes the IPAM plugin hands out, and
// optionally makes the bridge the pods' gateway, masquerades the pods' traffic leaving their
// subnet (nftables), and drops frames whose source MAC is not the pod's (nftables, bridge family).
//
// The veth's container end is created directly inside the namespace (IFLA_NET_NS_FD), and the
// container side is configured through a netlink socket opened in the namespace, so no thread
// switches namespaces on the ADD path.
package bridge
