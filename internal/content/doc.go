// Package content is berth's local content store: blobs addressed by digest on the filesystem and
// image names (name → target descriptor) in a small embedded database (bbolt). The CLI and the
// daemon share it.
//
// Blobs are written to ingest/ first and renamed into blobs/ALG/HEX only after their size and digest
// were checked and the data fsynced, so a blob under blobs/ is always whole and a crash leaves at
// most a stray ingest file that the next garbage collection removes. The database is opened for the
// life of a Store and locked against other processes (bbolt's flock): two Stores on one root take
// turns, waiting up to Config.LockTimeout.
//
// The package knows image-spec media types only to walk images for garbage collection; reading
// images, unpacking layers and registries belong elsewhere.
package content
