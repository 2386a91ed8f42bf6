package runtime

import (
	"fmt"
	"os"
	"time"
)

var traceOn = os.Getenv("BERTH_TRACE") != ""

func trace(what string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "TRACE %d %s %d\n", os.Getpid(), what, time.Now().UnixMicro())
	}
}
