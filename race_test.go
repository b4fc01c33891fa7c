//go:build race

package main

// raceEnabled: the race detector slows the command's start-up by far more
// than the time bounds the tests check, so those bounds are not checked.
const raceEnabled = true
