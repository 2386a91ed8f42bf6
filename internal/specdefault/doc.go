// Package specdefault holds the runtime-spec configuration berth starts from: the one
// `berth-runtime spec` writes and the base of bundles made from images. It has no dependencies
// beyond the spec types, so that binaries built without cgo can use it.
package specdefault
