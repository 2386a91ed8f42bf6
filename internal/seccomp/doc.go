// Package seccomp compiles a runtime-spec seccomp profile (specs.LinuxSeccomp) into a classic BPF program
// and installs it on the calling thread. It is pure Go: no cgo, no libseccomp.
//
// What it owns:
//   - validating a profile, with errors that name the offending field and wrap ErrInvalidProfile;
//   - the syscall tables, generated from golang.org/x/sys by ./gen, for x86_64, x86, x32, aarch64 and arm:
//     the architectures whose processes can run on an amd64 or arm64 host. The other runtime-spec
//     architectures are accepted and get no code, so a syscall claiming one of them meets the bad-arch
//     action (it cannot happen on the hosts we run on);
//   - the layout of the program: a check of seccomp_data.arch, where an architecture the profile does not
//     list is killed with SECCOMP_RET_KILL_THREAD (libseccomp's default bad-arch action, kept so profiles
//     behave as under runc); on x86_64 a split on the x32 bit, so x86_64 rules never match x32 calls; then
//     per architecture a binary search over syscall-number ranges (a few comparisons per syscall, and a
//     Docker-sized profile for three architectures in a few hundred instructions, far below the kernel's
//     4096) and the argument checks of conditional rules, 64-bit values compared as two 32-bit words;
//   - Load (the seccomp(2) call) and the probes behind the runtime's `features` output.
//
// Rule semantics follow runc with libseccomp, so that a profile means the same thing under both runtimes;
// Compile's comment lists them. Known differences from libseccomp: overlapping conditional rules for one
// syscall are tried in profile order (libseccomp uses its own tree order), and the i386 socketcall/ipc
// multiplexers are not expanded (a rule on "socket" does not also match socketcall(SYS_SOCKET, ...)). As in
// libseccomp, 32-bit ABIs (x86, arm, x32) compare only the low word of an argument, with the rule's value
// truncated to 32 bits.
//
// What it must not do: set no_new_privs, lock OS threads, exec, or talk to the seccomp agent at
// listenerPath; the runtime does those around Load. It must not add SECCOMP_FILTER_FLAG_TSYNC on its own:
// the runtime installs the filter on one locked thread right before exec, and synchronising the other
// threads would filter the Go runtime itself. It must not refuse NOTIFY on syscalls the runtime needs
// (write, close...): that is the runtime's decision.
package seccomp
