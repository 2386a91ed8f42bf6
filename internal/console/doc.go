// Package console allocates pseudo-terminals and passes their master side between processes the way
// runc's --console-socket protocol does: one sendmsg(2) whose data is the master's name and whose
// SCM_RIGHTS control message holds its descriptor (what containerd's and conmon's receivers read).
//
// It also puts the runtime's own terminal into raw mode when it relays a foreground container's tty.
// It must not relay data itself; the caller copies between the descriptors.
package console
