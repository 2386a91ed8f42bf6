// Package registry is berth's OCI distribution-spec v1.1 registry: an http.Handler over
// internal/registry/storage, with the options a deployment needs (TLS, htpasswd or Docker bearer
// token authentication, read-only mode, Prometheus metrics, access logs).
//
// It owns the HTTP side only: routing the spec's endpoints, authorising each request, and mapping
// storage errors to the spec's error codes and statuses. It can run on its own (`berth registry
// serve`) or be mounted inside another daemon through Server.ServeHTTP. Choices it makes where the
// spec leaves room are listed in docs/architecture.md ("Registry").
package registry
