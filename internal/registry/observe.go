package registry

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/berth-dev/berth/internal/jsonappend"
)

// metrics are the registry's Prometheus metrics, in a registry of their own (no global state).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytesOut  *prometheus.CounterVec
	bytesIn   *prometheus.CounterVec
	gcRuns    prometheus.Counter
	gcDeleted prometheus.Counter
	gcBytes   prometheus.Counter
	uploadsGC prometheus.Counter

	// resolved children: a label lookup per request costs more than the request's own work
	mu    sync.RWMutex
	cache map[metricKey]*metricSet
}

type metricKey struct {
	method, route string
	code          int
}

type metricSet struct {
	requests prometheus.Counter
	duration prometheus.Observer
	out, in  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "http_requests_total",
			Help: "HTTP requests by method, endpoint and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth", Subsystem: "registry", Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by method and endpoint.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "http_response_bytes_total",
			Help: "Response body bytes sent, by endpoint.",
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "http_request_bytes_total",
			Help: "Request body bytes declared (Content-Length), by endpoint.",
		}, []string{"route"}),
		gcRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "gc_runs_total", Help: "Garbage collections run by the server.",
		}),
		gcDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "gc_blobs_deleted_total", Help: "Blobs deleted by the server's garbage collections.",
		}),
		gcBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "gc_bytes_deleted_total", Help: "Bytes deleted by the server's garbage collections.",
		}),
		uploadsGC: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "registry", Name: "uploads_purged_total", Help: "Abandoned uploads removed.",
		}),
		cache: map[metricKey]*metricSet{},
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesOut, m.bytesIn, m.gcRuns, m.gcDeleted, m.gcBytes, m.uploadsGC,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(method, route string, code int, d time.Duration, in, out int64) {
	k := metricKey{method, route, code}
	m.mu.RLock()
	s := m.cache[k]
	m.mu.RUnlock()
	if s == nil {
		s = &metricSet{
			requests: m.requests.WithLabelValues(method, route, strconv.Itoa(code)),
			duration: m.duration.WithLabelValues(method, route),
			out:      m.bytesOut.WithLabelValues(route),
			in:       m.bytesIn.WithLabelValues(route),
		}
		m.mu.Lock()
		if len(m.cache) < 4096 { // methods and codes come from clients: bound the cache
			m.cache[k] = s
		}
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
	if out > 0 {
		s.out.Add(float64(out))
	}
	if in > 0 {
		s.in.Add(float64(in))
	}
}

// recorder captures a response's status and size. It forwards ReadFrom so that blobs still go
// out with sendfile(2).
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.n += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

// bufferedLog is the access log's writer: lines collect in memory and reach the file at most
// every flushEvery, or when the buffer fills, so that a request costs no write(2). Lines of the
// last moments before a crash can be lost; errors go through the unbuffered logger.
type bufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 100 * time.Millisecond

func newBufferedLog(w io.Writer) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *bufferedLog) loop() {
	defer close(b.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

func (b *bufferedLog) flush() {
	b.mu.Lock()
	_ = b.w.Flush()
	b.mu.Unlock()
}

func (b *bufferedLog) Close() {
	close(b.stop)
	<-b.done
}

// accessLog writes one line per request.
func (s *Server) accessLog(r *http.Request, rt string, rec *recorder, user string, d time.Duration) {
	if s.accessJSON {
		bp := lineBufs.Get().(*[]byte)
		b := appendAccessJSON((*bp)[:0], time.Now(), r, rt, rec, user, d)
		_, _ = s.alog.Write(b)
		if cap(b) <= 4<<10 {
			*bp = b
			lineBufs.Put(bp)
		}
		return
	}
	attrs := [...]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", clipPath(r.URL.Path)),
		slog.String("route", rt),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.n),
		slog.Float64("ms", float64(d.Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
		slog.String("user", user),
	}
	s.access.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:]...)
}

func clipPath(p string) string {
	if len(p) > 512 {
		return p[:512] + "..."
	}
	return p
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendAccessJSON appends the access log line that slog's JSON handler writes for the attributes
// of accessLog (same keys, order and encodings), by hand: through slog, the line cost about a tenth
// of a blob HEAD's CPU time under load (attribute boxing, handler state, json.Marshal of the float).
func appendAccessJSON(b []byte, t time.Time, r *http.Request, rt string, rec *recorder, user string, d time.Duration) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	b = jsonappend.String(b, r.Method)
	b = append(b, `,"path":`...)
	b = jsonappend.String(b, clipPath(r.URL.Path))
	b = append(b, `,"route":`...)
	b = jsonappend.String(b, rt)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, rec.n, 10)
	b = append(b, `,"ms":`...)
	// microseconds / 1000 has at most three decimals: 'f' with the shortest precision writes what
	// encoding/json writes for it (which uses exponents only below 1e-6)
	b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"remote":`...)
	b = jsonappend.String(b, r.RemoteAddr)
	b = append(b, `,"user":`...)
	b = jsonappend.String(b, user)
	return append(b, "}\n"...)
}
