// Package linux holds thin, EINTR-safe wrappers of file system calls whose errors carry the operation
// and the path, for the hot paths of short-lived processes (the runtime, exec'd once per operation).
//
// They bypass package os on purpose: os.File registers every descriptor with the Go runtime's poller
// and asks its flags with fcntl, three extra system calls per small cgroupfs or procfs read or write,
// which add up to milliseconds of CPU in a container start. Use package os everywhere else.
package linux
