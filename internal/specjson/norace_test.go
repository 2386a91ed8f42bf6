//go:build !race

package specjson

const raceEnabled = false
