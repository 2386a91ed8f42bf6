// Package jsonappend appends JSON values to byte slices, for the hand-written encoders of small
// documents on hot paths (the runtime's state and messages, the registry's access log lines),
// where encoding/json's per-type set-up or slog's handler would cost more than the encoding. It
// writes what encoding/json writes, except that <, > and & are not escaped (as slog does not).
package jsonappend
