// Package netns opens network namespaces by path and runs functions inside them on a locked OS
// thread.
//
// Go schedules goroutines over many threads and setns(2) changes only the calling thread, so a
// function that must run inside a namespace (procfs sysctls, sockets created there) runs on a
// goroutine locked to its thread. If the thread cannot be switched back to its original namespace
// it stays locked when the goroutine ends, and the Go runtime then discards the thread instead of
// reusing it for other goroutines.
//
// Most netlink work does not need this package's Do: a netlink socket opened inside a namespace
// (Handle) keeps working there from any thread. The package must not create or delete named
// namespaces for production code; tests create theirs with Create.
package netns
