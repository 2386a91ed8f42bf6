// Package hostlocal is the host-local IPAM plugin: it hands out addresses from ranges and range
// sets (IPv4, IPv6, both) and records each allocation as a file named for the address in
// dataDir/<network>/, holding "<container ID>\r\n<interface>", the same layout as the reference
// plugin so an existing data directory keeps working. A flock on that directory serialises
// allocators across processes; GC removes allocations whose attachments the runtime no longer
// lists. It configures nothing in the container; the interface plugin does.
package hostlocal
