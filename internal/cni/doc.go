// Package cni is the edge every berth CNI plugin shares: it reads the CNI protocol (through the
// standard's own pkg/skel and pkg/types), sets up logging, delegates to IPAM plugins, and turns the
// plugins' error classes into the spec's numbered error codes on stdout.
//
// Plugins live in one package each under internal/cni (bridge, hostlocal, loopback, portmap,
// bandwidth, firewall, tuning) and know nothing of exit codes or stdout: they return results and
// wrapped errors. Nothing here may print anything but a result or an error to stdout.
package cni
