// Command runtimebench measures berth-runtime beside runc and crun in the same run, interleaved, and
// prints `key: value` lines with the ratios: run of /bin/true, create, start, delete, exec, 50
// containers started at once, and the peak RSS of the runtime during create.
//
// Usage: runtimebench [-runs N] [-rounds R] [-conc N] [-berth bin/berth-runtime] [-anchors runc,crun]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/testimage"
)

type runtime struct {
	name, bin, root string
}

func (r *runtime) cmd(args ...string) *exec.Cmd {
	c := exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
	return c
}

// run runs a runtime command and returns its wall time. Its stderr goes to a file, not a pipe: a
// container inherits the runtime's stdio, and Wait would wait for it to exit.
func (r *runtime) run(args ...string) (time.Duration, error) {
	c := r.cmd(args...)
	ef, err := os.CreateTemp("", "runtimebench-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(ef.Name())
	defer ef.Close()
	c.Stderr = ef
	t0 := time.Now()
	err = c.Run()
	d := time.Since(t0)
	if err != nil {
		msg, _ := os.ReadFile(ef.Name())
		return d, fmt.Errorf("%s %s: %w: %s", r.name, strings.Join(args, " "), err, msg)
	}
	return d, nil
}

// createRSS measures the peak RSS of `create` with GNU time, as the anchors were measured: the
// rusage of a child that Go starts with vfork would count the parent's memory until its exec.
func (r *runtime) createRSS(bundle, id string) (int64, error) {
	out, err := os.CreateTemp("", "runtimebench-rss-")
	if err != nil {
		return 0, err
	}
	out.Close()
	defer os.Remove(out.Name())
	c := exec.Command("/usr/bin/time", append([]string{"-o", out.Name(), "-f", "%M", r.bin, "--root", r.root}, "create", "--bundle", bundle, id)...)
	if err := c.Run(); err != nil {
		return 0, fmt.Errorf("%s create under /usr/bin/time: %w", r.name, err)
	}
	defer r.forceDelete(id)
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return 0, err
	}
	var kb int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &kb); err != nil {
		return 0, fmt.Errorf("GNU time printed %q: %w", b, err)
	}
	return kb, nil
}

func (r *runtime) status(id string) string {
	out, err := r.cmd("state", id).Output()
	if err != nil {
		return ""
	}
	var s struct{ Status string }
	_ = json.Unmarshal(out, &s)
	return s.Status
}

func (r *runtime) waitStatus(id, want string) error {
	deadline := time.Now().Add(10 * time.Second)
	for r.status(id) != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: container %s never became %s", r.name, id, want)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (r *runtime) forceDelete(id string) { _ = r.cmd("delete", "--force", id).Run() }

type samples map[string][]float64

func (s samples) add(k string, v float64) { s[k] = append(s[k], v) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func main() {
	runs := flag.Int("runs", 30, "timed runs per metric and runtime")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	conc := flag.Int("conc", 50, "containers started at once")
	concReps := flag.Int("conc-reps", 3, "repetitions of the concurrent start")
	berthBin := flag.String("berth", "bin/berth-runtime", "berth-runtime binary")
	anchors := flag.String("anchors", "crun,runc", "anchor runtimes on PATH")
	work := flag.String("work", ".cache/bench/runtime", "scratch directory")
	flag.Parse()
	if err := bench(*runs, *rounds, *conc, *concReps, *berthBin, *anchors, *work); err != nil {
		fmt.Fprintln(os.Stderr, "runtimebench:", err)
		os.Exit(1)
	}
}

func bench(runs, rounds, conc, concReps int, berthBin, anchorList, work string) error {
	work, _ = filepath.Abs(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	bin, err := filepath.Abs(berthBin)
	if err != nil {
		return err
	}
	rts := []*runtime{{name: "berth", bin: bin}}
	for _, a := range strings.Split(anchorList, ",") {
		if a == "" {
			continue
		}
		p, err := exec.LookPath(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "runtimebench: anchor %s not found, skipped\n", a)
			continue
		}
		rts = append(rts, &runtime{name: a, bin: p})
	}
	for _, r := range rts {
		r.root = filepath.Join(work, "state", r.name)
		if err := os.MkdirAll(r.root, 0o700); err != nil {
			return err
		}
	}
	bundles, err := makeBundles(work)
	if err != nil {
		return err
	}
	if err := prepareCrun(rts, bundles["true"]); err != nil {
		return err
	}
	res := map[string]samples{}
	for _, r := range rts {
		res[r.name] = samples{}
	}
	per := max(1, (runs+rounds-1)/rounds)
	perConc := max(1, (concReps+rounds-1)/rounds)
	for round := 0; round < rounds; round++ {
		order := append([]*runtime(nil), rts...)
		// Rotate the order each round, so that no runtime always runs on a warm (or cold) machine.
		for i := 0; i < round%len(order); i++ {
			order = append(order[1:], order[0])
		}
		for _, r := range order {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", round+1, rounds, r.name)
			if err := benchRound(r, res[r.name], bundles, per, perConc, conc); err != nil {
				return err
			}
		}
	}
	report(rts, res, conc)
	return nil
}

func makeBundles(work string) (map[string]string, error) {
	rootfs := filepath.Join(work, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		if err := testimage.Busybox(rootfs); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for name, args := range map[string][]string{"true": {"/bin/true"}, "sleep": {"/bin/sleep", "3600"}} {
		dir := filepath.Join(work, "bundle-"+name)
		s, err := testimage.Bundle(dir, rootfs, testimage.BundleOptions{Args: args})
		if err != nil {
			return nil, err
		}
		// crun 1.8 refuses runtime-spec versions above 1.1; the bundle uses nothing newer.
		s.Version = "1.1.0"
		s.Root.Readonly = true
		s.Process.Rlimits = nil
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
			return nil, err
		}
		out[name] = dir
	}
	return out, nil
}

// prepareCrun makes crun usable on a hybrid cgroup host: crun 1.8 refuses hybrid mode while the
// cgroup2 hierarchy holds a controller (hugetlb here) and accepts it once hugetlb has a v1 hierarchy.
func prepareCrun(rts []*runtime, bundle string) error {
	for _, r := range rts {
		if r.name != "crun" {
			continue
		}
		if _, err := r.run("run", "--bundle", bundle, "probe"); err == nil {
			return nil
		}
		b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
		if err == nil && strings.Contains(string(b), "hugetlb") {
			fmt.Fprintln(os.Stderr, "runtimebench: mounting a hugetlb v1 hierarchy at /sys/fs/cgroup/hugetlb so that crun accepts this hybrid host")
			_ = os.MkdirAll("/sys/fs/cgroup/hugetlb", 0o755)
			if err := syscall.Mount("cgroup", "/sys/fs/cgroup/hugetlb", "cgroup", 0, "hugetlb"); err != nil {
				return fmt.Errorf("mount hugetlb: %w", err)
			}
		}
		if _, err := r.run("run", "--bundle", bundle, "probe"); err != nil {
			return fmt.Errorf("crun cannot run here: %w", err)
		}
	}
	return nil
}

func benchRound(r *runtime, s samples, bundles map[string]string, per, perConc, conc int) error {
	id := "rb-" + r.name
	for i := 0; i < per; i++ {
		d, err := r.run("run", "--bundle", bundles["true"], id+"-run")
		if err != nil {
			return err
		}
		s.add("run_true_ms", ms(d))
	}
	for i := 0; i < per; i++ {
		c := id + "-c"
		d, err := r.run("create", "--bundle", bundles["true"], c)
		if err != nil {
			return err
		}
		s.add("create_ms", ms(d))
		if d, err = r.run("start", c); err != nil {
			return err
		}
		s.add("start_ms", ms(d))
		if err := r.waitStatus(c, "stopped"); err != nil {
			return err
		}
		if d, err = r.run("delete", c); err != nil {
			return err
		}
		s.add("delete_ms", ms(d))
	}
	for i := 0; i < per; i++ {
		rss, err := r.createRSS(bundles["sleep"], id+"-rss")
		if err != nil {
			return err
		}
		s.add("create_rss_kb", float64(rss))
	}
	ex := id + "-exec"
	if _, err := r.run("run", "-d", "--bundle", bundles["sleep"], ex); err != nil {
		return err
	}
	for i := 0; i < per; i++ {
		d, err := r.run("exec", ex, "/bin/true")
		if err != nil {
			r.forceDelete(ex)
			return err
		}
		s.add("exec_ms", ms(d))
	}
	r.forceDelete(ex)
	for rep := 0; rep < perConc; rep++ {
		d, err := concurrent(r, bundles["sleep"], id+"-n", conc)
		if err != nil {
			return err
		}
		s.add(fmt.Sprintf("conc%d_ms", conc), ms(d))
	}
	return nil
}

// concurrent starts n containers at once and waits until every one reports running.
func concurrent(r *runtime, bundle, prefix string, n int) (time.Duration, error) {
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := r.run("run", "-d", "--bundle", bundle, fmt.Sprintf("%s%d", prefix, i)); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	if err == nil {
		for i := 0; i < n; i++ {
			if werr := r.waitStatus(fmt.Sprintf("%s%d", prefix, i), "running"); werr != nil {
				err = werr
				break
			}
		}
	}
	d := time.Since(t0)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); r.forceDelete(fmt.Sprintf("%s%d", prefix, i)) }(i)
	}
	wg.Wait()
	return d, err
}

func report(rts []*runtime, res map[string]samples, conc int) {
	fmt.Printf("cpus: %d\n", numCPU())
	for _, r := range rts {
		out, _ := exec.Command(r.bin, "--version").Output()
		fmt.Printf("version_%s: %s\n", r.name, strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
	}
	keys := []string{"run_true_ms", "create_ms", "start_ms", "delete_ms", "lifecycle_ms", "exec_ms", fmt.Sprintf("conc%d_ms", conc), "create_rss_kb"}
	for _, r := range rts {
		s := res[r.name]
		s["lifecycle_ms"] = []float64{median(s["create_ms"]) + median(s["start_ms"]) + median(s["delete_ms"])}
	}
	for _, k := range keys {
		b := median(res["berth"][k])
		fmt.Printf("%s: %.2f\n", k, b)
		for _, r := range rts[1:] {
			a := median(res[r.name][k])
			fmt.Printf("%s_%s: %.2f\n", k, r.name, a)
			if a > 0 {
				fmt.Printf("%s_ratio_%s: %.3f\n", k, r.name, b/a)
			}
		}
	}
}

func numCPU() int {
	b, err := os.ReadFile("/sys/fs/cgroup/cpuset/cpuset.cpus")
	if err != nil {
		return 0
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			n++
			continue
		}
		var a, z int
		fmt.Sscan(lo, &a)
		fmt.Sscan(hi, &z)
		n += z - a + 1
	}
	return n
}
