package main

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

func notify(ch chan os.Signal) {
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1)
}
