// Package errdefs holds the small set of error classes that berth's stores and services wrap their
// errors around (errors.Is), so that transports map them to HTTP statuses, gRPC codes or exit
// statuses at their edge and nowhere else. It owns no behaviour.
package errdefs
