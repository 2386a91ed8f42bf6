// Package testimage builds root filesystems and OCI runtime bundles locally, for tests, benchmarks
// and the demo: nothing can be pulled from a registry here.
//
// Roots are made from the host's static busybox (Debian's busybox-static) and from small static Go
// programs compiled on the spot, such as the checker under ./checker, which tests run inside
// containers to look at them from the inside. The package writes only below the directories it is
// given; it does not run containers.
package testimage
