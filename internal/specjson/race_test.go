//go:build race

package specjson

// raceEnabled: under the race detector, start-up takes seconds and timings mean nothing.
const raceEnabled = true
