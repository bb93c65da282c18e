package main

import (
	"net/http"
	"net/http/pprof"
)

// pprofMux serves Go's profiles for `tally agent --pprof-addr`, so an
// operator can see where a node spends its time under load:
//
//	go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=10
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
