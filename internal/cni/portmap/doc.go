// Package portmap is the portmap plugin: it forwards host ports to a pod's ports with nftables
// DNAT, from other hosts, from the host itself (127.0.0.1 included) and from other pods on the
// same bridge (hairpin).
//
// One table (inet, default name berth-cni-portmap) holds four maps, keyed by protocol and port
// (and host address, for mappings bound to one): dnat4any, dnat4ip, dnat6any, dnat6ip, whose values
// are the pod's address and port. A handful of fixed rules look the packet up and DNAT it; an ADD
// adds map elements, a DEL removes them. Each element's comment names its attachment, so DEL and
// GC find them without the runtime's cached result or the runtimeConfig of the ADD.
//
// Masquerade, where the reply would otherwise bypass the DNAT: every DNAT of ours sets a mark
// bit; a filter chain right after DNAT clears it unless the packet leaves through the interface it
// came in on (a pod reaching a sibling through a host port: hairpin); locally generated packets
// keep it (their source may be 127.0.0.1, which must not leave the host); postrouting
// masquerades marked packets. route_localnet is turned on for the pod's bridge so that a
// connection from 127.0.0.1 may be routed to it at all.
package portmap
