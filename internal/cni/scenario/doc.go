// Package scenario is the CNI scenario suite: tests that drive a directory of CNI plugin binaries
// the way container runtimes do, through libcni and through cnitool, and check what the spec
// promises from the outside (traffic between pods, host ports, CHECK, DEL, GC, STATUS, VERSION,
// errors). It names no berth package: the same tests run against the reference plugins, which
// shows that they test the spec rather than berth's quirks.
//
// Environment: BERTH_CNI_PLUGINS (the plugin directory; default bin/cni of this checkout),
// BERTH_CNI_SPEC_VERSIONS (default "0.4.0 1.0.0 1.1.0"). With -short only 1.1.0 runs. The tests
// need root; each creates its own namespaces, bridge, subnets and nftables table names, and
// removes them when it ends, failed or not.
package scenario
