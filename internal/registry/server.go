package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/internal/registry/storage"
)

// Server is a distribution-spec registry. Create it with New, serve it with Run or mount it as an
// http.Handler, and Close it.
type Server struct {
	cfg     Config
	store   *storage.Store
	auth    authenticator
	metrics *metrics
	promh   http.Handler
	access  *slog.Logger // nil when access logging is off
	// accessJSON: the access log is JSON, formatted by appendAccessJSON rather than by access
	accessJSON bool
	alog       *bufferedLog
	stop       chan struct{}
	bg         chan struct{}
}

var _ http.Handler = (*Server)(nil)

// New opens the storage and prepares the server. ctx carries the logger for start-up messages.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	st, err := storage.Open(ctx, storage.Config{Root: cfg.Root})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, auth: auth, stop: make(chan struct{}), bg: make(chan struct{})}
	if !cfg.Metrics.Disabled {
		s.metrics = newMetrics()
		s.promh = promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	}
	if cfg.accessLog() {
		s.alog = newBufferedLog(os.Stderr)
		var h slog.Handler
		if cfg.Log.Format == "text" {
			h = slog.NewTextHandler(s.alog, nil)
		} else {
			h = slog.NewJSONHandler(s.alog, nil)
			s.accessJSON = true
		}
		s.access = slog.New(h)
	}
	go s.background(ctx)
	return s, nil
}

// Store is the server's storage (for an embedding daemon, and tests).
func (s *Server) Store() *storage.Store { return s.store }

// Close stops background work, flushes the access log and releases the storage.
func (s *Server) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.bg
	if s.alog != nil {
		s.alog.Close()
	}
	return s.store.Close()
}

// background purges abandoned uploads hourly, and collects garbage when configured to.
func (s *Server) background(ctx context.Context) {
	defer close(s.bg)
	ctx = context.WithoutCancel(ctx)
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	var gc <-chan time.Time
	if iv := time.Duration(s.cfg.GC.Interval); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		gc = t.C
	}
	s.purgeUploads(ctx)
	for {
		select {
		case <-s.stop:
			return
		case <-purge.C:
			s.purgeUploads(ctx)
		case <-gc:
			s.collect(ctx)
		}
	}
}

func (s *Server) purgeUploads(ctx context.Context) {
	n, err := s.store.PurgeUploads(ctx, s.cfg.uploadTTL())
	if err != nil {
		slog.WarnContext(ctx, "purging abandoned uploads", "err", err)
	}
	if n > 0 {
		slog.InfoContext(ctx, "purged abandoned uploads", "count", n)
		if s.metrics != nil {
			s.metrics.uploadsGC.Add(float64(n))
		}
	}
}

func (s *Server) collect(ctx context.Context) {
	rep, err := s.store.GC(ctx, storage.GCOptions{Grace: s.cfg.grace(), UploadTTL: s.cfg.uploadTTL()})
	if err != nil {
		slog.WarnContext(ctx, "garbage collection", "err", err)
		return
	}
	slog.InfoContext(ctx, "garbage collection", "blobs_deleted", rep.BlobsDeleted, "bytes_deleted", rep.BytesDeleted,
		"uploads_deleted", rep.UploadsDeleted, "duration", rep.Duration)
	if s.metrics != nil {
		s.metrics.gcRuns.Inc()
		s.metrics.gcDeleted.Add(float64(rep.BlobsDeleted))
		s.metrics.gcBytes.Add(float64(rep.BytesDeleted))
		s.metrics.uploadsGC.Add(float64(rep.UploadsDeleted))
	}
}

// Run listens on cfg.Addr and serves until ctx is done, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to 30 s), and returns. ready, if not nil, is called
// with the listening address once connections are accepted.
func (s *Server) Run(ctx context.Context, ready func(net.Addr)) error {
	if s.cfg.Addr == "" {
		return errors.New("addr: no address to listen on")
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if t := s.cfg.TLS; t != nil {
		cfg, err := tlsConfig(t)
		if err != nil {
			return err
		}
		srv.TLSConfig = cfg
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	// The address is logged as bound, so that --addr 127.0.0.1:0 (a free port) can be found.
	slog.InfoContext(ctx, "registry listening", "addr", ln.Addr().String(), "root", s.store.Root(), "tls", srv.TLSConfig != nil)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.InfoContext(ctx, "registry shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func tlsConfig(t *TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if t.ClientCAs != "" {
		pem, err := os.ReadFile(t.ClientCAs)
		if err != nil {
			return nil, fmt.Errorf("tls client CAs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CAs %s: no certificates", t.ClientCAs)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

var apiVersion = []string{"registry/2.0"}

// ServeHTTP routes a request to its endpoint, after authorisation, and records it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt := parseRoute(r.URL.Path)
	if r.URL.RawPath != "" {
		rt = routeEscaped(r.URL)
	}
	rec := recorderPool.Get().(*recorder)
	*rec = recorder{ResponseWriter: w}
	user := s.serve(rec, r, rt)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if s.metrics != nil || s.access != nil {
		d := time.Since(start)
		if s.metrics != nil {
			s.metrics.observe(r.Method, rt.kind, rec.status, d, r.ContentLength, rec.n)
		}
		if s.access != nil {
			s.accessLog(r, rt.kind, rec, user, d)
		}
	}
	*rec = recorder{}
	recorderPool.Put(rec)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) string {
	if rt.kind == kindMetrics && s.promh != nil {
		s.promh.ServeHTTP(w, r)
		return ""
	}
	w.Header()["Docker-Distribution-Api-Version"] = apiVersion
	if rt.kind == kindUnknown || rt.kind == kindMetrics {
		writeError(w, r, newError(http.StatusNotFound, codeNameUnknown, "no such endpoint"))
		return ""
	}
	need, aerr := s.needs(r, rt)
	if aerr != nil {
		writeError(w, r, aerr)
		return ""
	}
	user, aerr := s.auth.authorize(w, r, need)
	if aerr != nil {
		writeError(w, r, aerr)
		return ""
	}
	if s.cfg.ReadOnly && isWrite(r.Method) {
		writeError(w, r, newError(http.StatusMethodNotAllowed, codeUnsupported, "the registry is read-only"))
		return user
	}
	switch rt.kind {
	case kindBase:
		s.base(w, r)
	case kindCatalog:
		s.catalog(w, r)
	case kindTags:
		s.tags(w, r, rt)
	case kindManifest:
		s.manifest(w, r, rt)
	case kindBlob:
		s.blob(w, r, rt)
	case kindUpload:
		s.upload(w, r, rt)
	case kindReferrers:
		s.referrers(w, r, rt)
	}
	return user
}

func isWrite(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch || m == http.MethodDelete
}

// needs is the access a request requires, and refuses methods an endpoint does not have.
func (s *Server) needs(r *http.Request, rt route) ([]access, *apiError) {
	m := r.Method
	methods := func(ok ...string) *apiError {
		for _, o := range ok {
			if m == o {
				return nil
			}
		}
		return newError(http.StatusMethodNotAllowed, codeUnsupported, "method "+m+" is not supported here")
	}
	repo := func(actions ...string) []access {
		return []access{{typ: "repository", name: rt.name, actions: actions}}
	}
	switch rt.kind {
	case kindBase:
		return nil, methods(http.MethodGet, http.MethodHead)
	case kindCatalog:
		return []access{{typ: "registry", name: "catalog", actions: []string{"*"}}}, methods(http.MethodGet)
	case kindTags, kindReferrers:
		return repo("pull"), methods(http.MethodGet)
	case kindManifest, kindBlob:
		switch m {
		case http.MethodGet, http.MethodHead:
			return repo("pull"), nil
		case http.MethodPut:
			if rt.kind == kindBlob {
				break
			}
			return repo("pull", "push"), nil
		case http.MethodDelete:
			return repo("delete"), nil
		}
		return nil, methods()
	case kindUpload:
		if rt.arg == "" {
			return repo("pull", "push"), methods(http.MethodPost)
		}
		return repo("pull", "push"), methods(http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete)
	}
	return nil, methods()
}

func (s *Server) base(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = jsonContentType
	w.Header()["Content-Length"] = []string{"2"}
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
}
