// Package mount parses runtime-spec mount options into what mount(2) and mount_setattr(2) take: flags,
// propagation changes, recursive attributes and filesystem data.
//
// It owns the option vocabulary (the same words as mount(8) and runc, plus the runtime-spec's recursive
// "r*" attributes, idmap and tmpcopyup). It does not mount anything; the runtime does, inside the
// container's mount namespace.
package mount
