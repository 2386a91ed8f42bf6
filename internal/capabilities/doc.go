// Package capabilities translates runtime-spec capability names into the kernel's numbers and applies
// the five capability sets to the calling thread.
//
// It owns the table of capability names and the order in which the sets are applied around a change of
// user (bounding set first, then keep-caps across setresuid, then capset and the ambient set). It must
// not change users itself: the caller does that between ApplyBounding and Apply.
package capabilities
