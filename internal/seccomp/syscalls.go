package seccomp

import (
	"strings"
)

//go:generate go run ./gen

// sysEntry is one row of a generated syscall table. The tables are arrays of constants so that they cost
// nothing at start-up: berth-runtime is exec'd once per operation and a map literal would be built in init.
type sysEntry struct {
	name string
	nr   uint32
}

// lookupSyscall finds name in a table sorted by name.
func lookupSyscall(table []sysEntry, name string) (uint32, bool) {
	lo, hi := 0, len(table)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := strings.Compare(table[m].name, name); {
		case c == 0:
			return table[m].nr, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}
