package runtime

import (
	"fmt"
	"os"
	"time"
)

// traceOn is set by BERTH_TRACE: both halves then print one line per phase of their work to stderr,
// "TRACE <pid> <phase> <unix µs>", which is how the start-up costs in docs/architecture.md were found.
// The runtime half passes the variable on to the container half, whose constructor (nsexec.c)
// prints its own phases, named "c-...".
var traceOn = os.Getenv("BERTH_TRACE") != ""

func trace(phase string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "TRACE %d %s %d\n", os.Getpid(), phase, time.Now().UnixMicro())
	}
}
