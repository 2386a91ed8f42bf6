// Package specjson decodes runtime-spec documents (config.json into specs.Spec, an exec process.json
// into specs.Process, state into specs.State) without reflection.
//
// It exists for start-up cost, not steady-state speed: the first encoding/json.Unmarshal into
// specs.Spec in a fresh process builds decoders for the whole type tree by reflection, which costs
// about a millisecond, a tenth of a whole container start. The decoders here are generated ahead of
// time by ./gen from the runtime-spec types in go.mod, so the first call costs little more than
// every later one. A test fails when zz_generated.go no longer matches those types.
//
// It owns the Reader (a small JSON lexer that hand-written decoders can use too), the generated
// per-type decoders and the error types. It must not decide whether a spec is acceptable; that is
// the runtime's validation, which runs on the decoded value.
//
// # Same value as encoding/json
//
// For input that encoding/json.Unmarshal accepts, the decoded value is reflect.DeepEqual to what it
// produces, starting from the same value: member names match exactly, else case-insensitively
// (Unicode simple folding, so "\u212Aernel" is "kernel"); unknown members are skipped but
// syntax-checked; a repeated member wins, and merges into the struct, pointee, slice elements or
// map that the earlier one filled; null clears pointers, slices, maps and interfaces and leaves
// everything else; integers are range-checked for their Go type, and fractions or exponents are
// not integers; invalid UTF-8 and unpaired surrogates become U+FFFD; a top-level null changes
// nothing. interface{} members and floats (neither is on a Linux container's path) are handed to
// encoding/json. The equivalence is tested on realistic configs and fuzzed (FuzzEquivalence).
//
// What differs is confined to input encoding/json rejects, and to errors:
//
//   - Decoding stops at the first type error, where encoding/json carries on and fills in the rest;
//     a value that got an error must not be used either way. encoding/json also leaves the value
//     untouched on a syntax error, whereas this package may have decoded the members before it.
//   - Errors are *SyntaxError (with byte offset, line and column, and what was expected) and
//     *TypeError (with the member's path, e.g. "process.user.uid: expected uint32, got a JSON
//     string"), not encoding/json's types. As in encoding/json, a syntax error anywhere in the
//     input is reported in preference to a type error before it.
//   - Strings without escapes are cut from one copy of the input rather than allocated one by one,
//     so keeping any of them keeps that copy (the size of the config) alive.
package specjson

//go:generate go run ./gen -o zz_generated.go
