package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// event is what runc's events command prints, one JSON object per line.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func cmdEvents(ctx context.Context, g *globals, args []string) error {
	var stats bool
	interval := 5 * time.Second
	f := newFlags("events")
	f.boolean(&stats, "print the statistics once and exit", "stats")
	f.DurationVar(&interval, "interval", interval, "time between statistics")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if interval <= 0 {
		return usagef("--interval %v: must be positive", interval)
	}
	c, err := load(g, rest)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	emitStats := func() error {
		s, err := c.Stats()
		if err != nil {
			return err
		}
		return enc.Encode(event{Type: "stats", ID: c.ID(), Data: s})
	}
	if stats {
		return emitStats()
	}
	// OOM kills are noticed by polling the kernel's counter, at a faster pace than statistics.
	ooms, _ := c.OOMKillCount()
	statTick := time.NewTicker(interval)
	defer statTick.Stop()
	oomTick := time.NewTicker(200 * time.Millisecond)
	defer oomTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-statTick.C:
			if c.Status() == runtime.StatusStopped {
				return nil
			}
			if err := emitStats(); err != nil {
				return err
			}
		case <-oomTick.C:
			if c.Status() == runtime.StatusStopped {
				return nil
			}
			if n, err := c.OOMKillCount(); err == nil && n > ooms {
				ooms = n
				if err := enc.Encode(event{Type: "oom", ID: c.ID()}); err != nil {
					return err
				}
			}
		}
	}
}
