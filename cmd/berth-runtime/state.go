package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/runtime"
)

func cmdState(ctx context.Context, g *globals, args []string) error {
	c, err := load(g, args)
	if err != nil {
		return err
	}
	return printJSON(c.State())
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

func cmdList(ctx context.Context, g *globals, args []string) error {
	var format string
	var quiet bool
	f := newFlags("list")
	f.str(&format, "table", "table or json", "format", "f")
	f.boolean(&quiet, "print only ids", "quiet", "q")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected arguments %q", rest)
	}
	cs, err := g.rt.List()
	if err != nil {
		return err
	}
	if quiet {
		for _, c := range cs {
			fmt.Println(c.ID())
		}
		return nil
	}
	states := make([]*runtime.StateInfo, 0, len(cs))
	for _, c := range cs {
		states = append(states, c.State())
	}
	switch format {
	case "json":
		b, err := json.Marshal(states)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	}
	return usagef("--format %q: want table or json", format)
}

func cmdPs(ctx context.Context, g *globals, args []string) error {
	var format string
	f := newFlags("ps")
	f.str(&format, "table", "table or json", "format", "f")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("a container id is required")
	}
	c, err := g.rt.Load(rest[0])
	if err != nil {
		return err
	}
	pids, err := c.Processes()
	if err != nil {
		return err
	}
	switch format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		return printJSON(pids)
	case "table":
	default:
		return usagef("--format %q: want table or json", format)
	}
	psArgs := rest[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ps", psArgs...)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err = nsexec.WithHostTimerSlack(cmd.Start)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	return filterPs(out.Bytes(), pids)
}

// filterPs keeps ps's header and the lines of the container's processes.
func filterPs(out []byte, pids []int) error {
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return fmt.Errorf("ps printed nothing")
	}
	header := sc.Text()
	col := -1
	for i, h := range strings.Fields(header) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column: %q", header)
	}
	fmt.Println(header)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= col {
			continue
		}
		if p, err := strconv.Atoi(fields[col]); err == nil && in[p] {
			fmt.Println(sc.Text())
		}
	}
	return nil
}
