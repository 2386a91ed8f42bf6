package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// loadResult is one closed-loop load phase against one URL.
type loadResult struct {
	requests int
	rps      float64
	p50, p99 float64 // milliseconds
	bad      int     // transport errors and non-2xx answers
	cpuUs    float64 // server CPU time per request, microseconds
}

// load keeps conns connections busy for d, each sending the same request as soon as the previous
// answer has been read (a closed loop: the rate is what the server sustains), after a short
// untimed warm-up that opens the connections.
func load(ctx context.Context, reg *registry, method, url string, hdr http.Header, conns int, d time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DisableCompression: true, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	run := func(d time.Duration, record bool) ([][]time.Duration, []int) {
		lctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		lat := make([][]time.Duration, conns)
		bad := make([]int, conns)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(context.WithoutCancel(lctx), method, url, nil)
				req.Header = hdr.Clone()
				l := make([]time.Duration, 0, 1<<15)
				for lctx.Err() == nil {
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						bad[i]++
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if record {
						l = append(l, time.Since(t0))
					}
					if resp.StatusCode < 200 || resp.StatusCode > 299 {
						bad[i]++
					}
				}
				lat[i] = l
			})
		}
		wg.Wait()
		return lat, bad
	}
	run(300*time.Millisecond, false)
	cpu0 := reg.cpuSeconds()
	t0 := time.Now()
	lat, bad := run(d, true)
	elapsed := time.Since(t0)
	cpu := reg.cpuSeconds() - cpu0

	var all []time.Duration
	res := loadResult{}
	for i := range lat {
		all = append(all, lat[i]...)
		res.bad += bad[i]
	}
	slices.Sort(all)
	res.requests = len(all)
	res.rps = float64(len(all)) / elapsed.Seconds()
	res.p50, res.p99 = percentile(all, 0.50), percentile(all, 0.99)
	if len(all) > 0 {
		res.cpuUs = cpu * 1e6 / float64(len(all))
	}
	return res
}

// percentile of sorted latencies, in milliseconds (nearest rank).
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}
