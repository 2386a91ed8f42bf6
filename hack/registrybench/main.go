// Command registrybench measures `berth registry serve` beside the CNCF Distribution registry in the
// same run, interleaved, and prints `key: value` lines with the ratios berth/distribution:
//
//   - push and pull of a generated image of 256 MiB in 5 layers ("big") and of one of 200 small
//     layers ("small"), in MB/s (1 MB = 1 MiB), with plain net/http against the distribution-spec
//     API and 4 blobs in flight, as go-containerregistry's clients do;
//   - manifest GET by tag and blob HEAD: requests per second, p50 and p99 latency of a closed loop
//     over -conns connections (wrk cannot send HEAD), and the server CPU time per request (less
//     sensitive than req/s to other work on the machine; pushes and pulls report it too);
//   - each server's peak RSS (VmHWM) over the run.
//
// Both servers run at once, each with a fresh root. Every round does the same work against both,
// the order alternating from round to round so that drift in the machine's load falls on both;
// a ratio is the median of the rounds' ratios. The load generator and the clients share the
// machine with the servers, as in the evaluation.
//
// Usage: registrybench [-berth bin/berth] [-distribution .cache/bin/registry] [-rounds 3]
// [-xfer-rounds 3] [-seconds 5] [-conns 16] [-quick]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type options struct {
	berth, distribution, work    string
	baseline                     string
	rounds, xferRounds, conns    int
	jobs, bigLayers, smallLayers int
	seconds                      time.Duration
	bigBytes, smallBytes         int64
	skipXfer, skipLoad, keep     bool
}

func main() {
	var o options
	flag.StringVar(&o.berth, "berth", "bin/berth", "berth binary")
	flag.StringVar(&o.distribution, "distribution", ".cache/bin/registry", "CNCF Distribution registry binary (v3.1.2)")
	flag.StringVar(&o.baseline, "baseline", "", "a second berth binary (e.g. built from an earlier commit) run in the same rounds, reported as _baseline and _vs_baseline")
	flag.StringVar(&o.work, "work", ".cache/bench/registry", "scratch directory (the servers' roots, removed at the end)")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of the request-load phases")
	flag.IntVar(&o.xferRounds, "xfer-rounds", 3, "interleaved rounds of push and pull")
	flag.IntVar(&o.conns, "conns", 16, "connections of the request-load phases")
	flag.IntVar(&o.jobs, "jobs", 4, "blobs in flight during a push or pull")
	flag.DurationVar(&o.seconds, "seconds", 5*time.Second, "length of each request-load phase")
	flag.IntVar(&o.bigLayers, "big-layers", 5, "layers of the big image")
	flag.Int64Var(&o.bigBytes, "big-bytes", 256<<20, "bytes of the big image's layers")
	flag.IntVar(&o.smallLayers, "small-layers", 200, "layers of the small image")
	flag.Int64Var(&o.smallBytes, "small-bytes", 100<<10, "bytes of each small layer")
	flag.BoolVar(&o.skipXfer, "no-xfer", false, "skip push and pull (the load phases push one image untimed)")
	flag.BoolVar(&o.skipLoad, "no-load", false, "skip the request-load phases")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (servers' roots and logs)")
	quick := flag.Bool("quick", false, "a smoke run: one round, 1 s phases, a 32 MiB image")
	flag.Parse()
	if *quick {
		o.rounds, o.xferRounds, o.seconds, o.bigBytes = 1, 1, time.Second, 32<<20
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "registrybench:", err)
		os.Exit(1)
	}
}

// results collects per-round values by key and registry.
type results map[string]map[string][]float64

func (r results) add(key, reg string, v float64) {
	if r[key] == nil {
		r[key] = map[string][]float64{}
	}
	r[key][reg] = append(r[key][reg], v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func run(ctx context.Context, o options) error {
	work, err := filepath.Abs(o.work)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	for _, b := range []string{o.berth, o.distribution} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("binary: %w (make; scripts/bench/registry.sh builds Distribution)", err)
		}
	}
	loadStart := loadavg()
	b, err := startBerth(ctx, "berth", o.berth, filepath.Join(dir, "berth"))
	if err != nil {
		return err
	}
	defer b.stop()
	d, err := startDistribution(ctx, o.distribution, filepath.Join(dir, "distribution"))
	if err != nil {
		return err
	}
	defer d.stop()
	regs := []*registry{b, d}
	if o.baseline != "" {
		base, err := startBerth(ctx, "baseline", o.baseline, filepath.Join(dir, "baseline"))
		if err != nil {
			return err
		}
		defer base.stop()
		regs = append(regs, base)
	}
	logf("berth at %s (pid %d), distribution at %s (pid %d)", b.base, b.cmd.Process.Pid, d.base, d.cmd.Process.Pid)
	for _, r := range regs {
		r.resetPeakRSS()
	}
	// the order rotates by round: berth first in the first, distribution in the second...
	order := func(round int) []*registry {
		out := make([]*registry, len(regs))
		for i := range regs {
			out[i] = regs[(i+round-1)%len(regs)]
		}
		return out
	}
	res := results{}
	peak := map[string]float64{}
	notePeak := func() {
		for _, r := range regs {
			if v, err := r.peakRSS(); err == nil {
				peak[r.name] = max(peak[r.name], v)
			}
		}
	}

	// ---- push and pull
	var last *image
	lastTag := ""
	if !o.skipXfer {
		for round := 1; round <= o.xferRounds; round++ {
			big, err := genImage(uint64(round)*2, o.bigLayers, o.bigBytes)
			if err != nil {
				return err
			}
			small, err := genImage(uint64(round)*2+1, o.smallLayers, int64(o.smallLayers)*o.smallBytes)
			if err != nil {
				return err
			}
			for _, kind := range []struct {
				name string
				img  *image
			}{{"big", big}, {"small", small}} {
				for _, r := range order(round) {
					c := newClient(r.base, o.jobs)
					repo, tag := "bench/"+kind.name, "r"+itoa(round)
					cpu0 := r.cpuSeconds()
					t0 := time.Now()
					if err := c.push(ctx, repo, tag, kind.img); err != nil {
						c.close()
						return fmt.Errorf("%s: push %s: %w", r.name, kind.name, err)
					}
					push := time.Since(t0)
					cpu1 := r.cpuSeconds()
					c.close()
					c = newClient(r.base, o.jobs) // a pull starts with new connections, as a new client does
					t0 = time.Now()
					n, err := c.pull(ctx, repo, tag)
					pull := time.Since(t0)
					cpu2 := r.cpuSeconds()
					c.close()
					if err != nil {
						return fmt.Errorf("%s: pull %s: %w", r.name, kind.name, err)
					}
					res.add("push_"+kind.name+"_mbs", r.name, mbps(kind.img.bytes, push.Seconds()))
					res.add("pull_"+kind.name+"_mbs", r.name, mbps(n, pull.Seconds()))
					res.add("push_"+kind.name+"_server_cpu_s", r.name, cpu1-cpu0)
					res.add("pull_"+kind.name+"_server_cpu_s", r.name, cpu2-cpu1)
					logf("round %d %s %s: push %.2fs pull %.2fs", round, kind.name, r.name, push.Seconds(), pull.Seconds())
				}
			}
			last, lastTag = big, "r"+itoa(round)
		}
		notePeak()
	}

	// ---- manifest GET and blob HEAD under a closed loop
	if !o.skipLoad {
		if last == nil {
			if last, err = genImage(99, 2, 1<<20); err != nil {
				return err
			}
			lastTag = "load"
			for _, r := range regs {
				c := newClient(r.base, o.jobs)
				err := c.push(ctx, "bench/big", lastTag, last)
				c.close()
				if err != nil {
					return fmt.Errorf("%s: push: %w", r.name, err)
				}
			}
		}
		accept := http.Header{"Accept": {ocispec.MediaTypeImageManifest}}
		for round := 1; round <= o.rounds; round++ {
			for _, r := range order(round) {
				mr := load(ctx, r, http.MethodGet, r.base+"/v2/bench/big/manifests/"+lastTag, accept, o.conns, o.seconds)
				if err := ctx.Err(); err != nil {
					return err
				}
				br := load(ctx, r, http.MethodHead, r.base+"/v2/bench/big/blobs/"+last.layers[0].desc.Digest.String(), nil, o.conns, o.seconds)
				if err := ctx.Err(); err != nil {
					return err
				}
				for _, x := range []struct {
					key string
					l   loadResult
				}{{"manifest_get", mr}, {"blob_head", br}} {
					if x.l.bad > 0 {
						return fmt.Errorf("%s: %s: %d of %d requests failed", r.name, x.key, x.l.bad, x.l.requests)
					}
					res.add(x.key+"_rps", r.name, x.l.rps)
					res.add(x.key+"_p50_ms", r.name, x.l.p50)
					res.add(x.key+"_p99_ms", r.name, x.l.p99)
					res.add(x.key+"_cpu_us_per_req", r.name, x.l.cpuUs)
				}
				logf("round %d load %s: manifest GET %.0f/s p99 %.2fms, blob HEAD %.0f/s p99 %.2fms",
					round, r.name, mr.rps, mr.p99, br.rps, br.p99)
			}
		}
		notePeak()
	}

	report(o, res, peak, loadStart)
	return nil
}

// higherBetter says which way a key's ratio should go.
func higherBetter(key string) bool {
	return strings.HasSuffix(key, "_rps") || strings.HasSuffix(key, "_mbs")
}

// targets are issue 3's: req/s at least 1.5x, p99 lower, push and pull at least as fast.
var targets = map[string]float64{
	"manifest_get_rps": 1.5, "blob_head_rps": 1.5, "manifest_get_p99_ms": 1, "blob_head_p99_ms": 1,
	"push_big_mbs": 1, "pull_big_mbs": 1, "push_small_mbs": 1, "pull_small_mbs": 1,
}

func report(o options, res results, peak map[string]float64, loadStart string) {
	fmt.Printf("host_cpus: %d\n", runtime.NumCPU())
	fmt.Printf("host_loadavg_start: %s\n", loadStart)
	fmt.Printf("host_loadavg_end: %s\n", loadavg())
	fmt.Printf("load_rounds: %d\nload_seconds: %g\nload_connections: %d\nxfer_rounds: %d\n", o.rounds, o.seconds.Seconds(), o.conns, o.xferRounds)
	fmt.Printf("big_image: %d layers, %d MiB\nsmall_image: %d layers of %d KiB\n", o.bigLayers, o.bigBytes>>20, o.smallLayers, o.smallBytes>>10)
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var met, missed []string
	for _, k := range keys {
		bv, dv := res[k]["berth"], res[k]["distribution"]
		ratios := roundRatios(bv, dv)
		ratio := median(ratios)
		fmt.Printf("%s_berth: %.3f\n", k, median(bv))
		fmt.Printf("%s_distribution: %.3f\n", k, median(dv))
		fmt.Printf("%s_ratio: %.2f\n", k, ratio)
		if len(ratios) > 1 {
			fmt.Printf("%s_ratio_rounds: %s\n", k, fmtList(ratios))
		}
		if base, ok := res[k]["baseline"]; ok {
			fmt.Printf("%s_baseline: %.3f\n", k, median(base))
			vb := roundRatios(bv, base)
			fmt.Printf("%s_vs_baseline: %.2f\n", k, median(vb))
			if len(vb) > 1 {
				fmt.Printf("%s_vs_baseline_rounds: %s\n", k, fmtList(vb))
			}
		}
		if t, ok := targets[k]; ok {
			ok := ratio >= t
			if !higherBetter(k) {
				ok = ratio < t
			}
			if ok {
				met = append(met, k)
			} else {
				missed = append(missed, k)
			}
		}
	}
	if len(peak) > 0 {
		fmt.Printf("peak_rss_mb_berth: %.1f\npeak_rss_mb_distribution: %.1f\n", peak["berth"], peak["distribution"])
		if v, ok := peak["baseline"]; ok {
			fmt.Printf("peak_rss_mb_baseline: %.1f\n", v)
		}
		if peak["distribution"] > 0 {
			r := peak["berth"] / peak["distribution"]
			fmt.Printf("peak_rss_ratio: %.2f\n", r)
			if r < 1 {
				met = append(met, "peak_rss")
			} else {
				missed = append(missed, "peak_rss")
			}
		}
	}
	fmt.Printf("targets_met: %d/%d\n", len(met), len(met)+len(missed))
	if len(missed) > 0 {
		fmt.Printf("targets_missed: %s\n", strings.Join(missed, " "))
	}
}

// roundRatios divides a's values by b's, round by round.
func roundRatios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

func fmtList(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}
