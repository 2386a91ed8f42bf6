// Command mkbundle writes an OCI runtime bundle with a busybox root filesystem, for the demo and for
// trying the runtime by hand: mkbundle DIR [command...].
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/testimage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle DIR [command...]")
		os.Exit(2)
	}
	dir := os.Args[1]
	rootfs := filepath.Join(dir, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		if err := testimage.Busybox(rootfs); err != nil {
			fmt.Fprintln(os.Stderr, "mkbundle:", err)
			os.Exit(1)
		}
	}
	args := []string{"sh"}
	if len(os.Args) > 2 {
		args = os.Args[2:]
	}
	if _, err := testimage.Bundle(dir, "rootfs", testimage.BundleOptions{Args: args}); err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
}
