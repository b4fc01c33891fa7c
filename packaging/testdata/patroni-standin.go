// Command patroni-standin answers like the REST API of a running Patroni
// primary, for the package tests: GET /primary (and any path naming
// "primary") gets 200 with the JSON body Patroni 3 sends, anything else 503.
// It listens on the address given as its only argument until killed.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
)

const body = `{"state": "running", "role": "master", "server_version": 150000,
 "timeline": 1, "xlog": {"location": 67108864}, "dcs_last_seen": 1764000000,
 "database_system_identifier": "7300000000000000000",
 "patroni": {"version": "3.0.2", "scope": "standin", "name": "standin"}}`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: patroni-standin HOST:PORT")
		os.Exit(2)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "primary") {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, body)
	})
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, "patroni-standin:", err)
		os.Exit(1)
	}
}
