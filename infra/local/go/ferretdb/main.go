// Command ferretdb runs FerretDB v2, the MongoDB wire-protocol front of the local engine
// (DocumentDB on PostgreSQL), through its embeddable package.
//
// FerretDB's own cmd/ferretdb expects a build that generated build/version/version.txt,
// which a module download never has; the embeddable package
// (github.com/FerretDB/FerretDB/v2/ferretdb) needs none, so this small main is ours.
// The embeddable package serves without authentication (the PostgreSQL it reaches is
// local to the machine, on a socket only its owner can open) and never reports telemetry.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiles on --debug-addr
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/v2/ferretdb"
)

func main() {
	postgresqlURL := flag.String("postgresql-url", "",
		"PostgreSQL URL of the database holding the documentdb extension")
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	stateDir := flag.String("state-dir", ".", "folder for FerretDB's state file")
	debugAddr := flag.String("debug-addr", "-",
		"serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; - for none")
	flag.Parse()

	if *postgresqlURL == "" {
		fmt.Fprintln(os.Stderr, "ferretdb: --postgresql-url is required")
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(*logLevel))); err != nil {
		fmt.Fprintf(os.Stderr, "bad --log-level: %v\n", err)
		os.Exit(2)
	}

	telemetry := false
	f, err := ferretdb.New(&ferretdb.Config{
		PostgreSQLURL: *postgresqlURL,
		ListenAddr:    *listenAddr,
		StateDir:      *stateDir,
		LogLevel:      level,
		LogOutput:     os.Stderr,
		Telemetry:     &telemetry,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *debugAddr != "-" && *debugAddr != "" {
		go func() {
			if err := http.ListenAndServe(*debugAddr, nil); err != nil {
				fmt.Fprintf(os.Stderr, "ferretdb: profiler stopped: %v\n", err)
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s\n", *listenAddr)
	f.Run(ctx)
}
